package testinfra

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// echoServer accepts connections on 127.0.0.1 and echoes what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string, within time.Duration) (string, error) {
	if err := c.SetDeadline(time.Now().Add(within)); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte(msg)); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c, buf)
	return string(buf), err
}

func TestProxyForwardsWithLatency(t *testing.T) {
	p := NewProxy(t, echoServer(t), 20*time.Millisecond)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	got, err := roundTrip(c, "ping", 5*time.Second)
	if err != nil || got != "ping" {
		t.Fatalf("round trip = %q, %v", got, err)
	}
	// Both directions are delayed: a round trip takes at least twice the
	// latency (a lower bound that sleeping guarantees).
	if took := time.Since(start); took < 40*time.Millisecond {
		t.Fatalf("round trip took %v, want at least 40ms", took)
	}
}

func TestProxyFreezeHoldsTrafficWithoutClosing(t *testing.T) {
	p := NewProxy(t, echoServer(t), 0)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "a", 5*time.Second); err != nil || got != "a" {
		t.Fatalf("before freeze: %q, %v", got, err)
	}
	p.Freeze()
	_, err = roundTrip(c, "b", 200*time.Millisecond)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("while frozen: err = %v, want a timeout (no reply, no close)", err)
	}
	p.Unfreeze()
	// The held "b" goes through now, in order.
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "b" {
		t.Fatalf("after unfreeze: %q, %v", buf, err)
	}
}
