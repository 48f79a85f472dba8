//go:build !linux

package postgres

import (
	"net"
	"time"
)

// setTCPUserTimeout does nothing off Linux: keepalives alone bound an
// idle lock connection there.
func setTCPUserTimeout(*net.TCPConn, time.Duration) error { return nil }
