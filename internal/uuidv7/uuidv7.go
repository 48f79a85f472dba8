// Package uuidv7 generates and parses RFC 9562 UUIDs, version 7.
//
// A version 7 UUID starts with a 48-bit Unix millisecond timestamp, so IDs
// generated later sort later; that keeps B-tree indexes compact and makes the
// event IDs of the outbox roughly time ordered. Within one process, IDs are
// strictly increasing: when the clock has not moved (or moved backwards) the
// 12-bit rand_a field is used as a counter (RFC 9562, section 6.2, method 1),
// and the timestamp is advanced when the counter overflows.
//
// The package is internal: [github.com/dddkit/dddkit/valueobject.ID] is the
// public face of it.
package uuidv7

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// UUID is a 128-bit universally unique identifier.
type UUID [16]byte

// ErrSyntax is returned by [Parse] for text that is not a canonical UUID.
var ErrSyntax = errors.New("uuid: invalid syntax, want xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (36 hex digits and hyphens)")

var gen struct {
	sync.Mutex
	lastMS  int64
	counter uint16 // 12 bits used
}

// New returns a new version 7 UUID whose timestamp is the current time.
func New() UUID { return NewAt(time.Now()) }

// NewAt returns a new version 7 UUID for the time t. IDs returned by one
// process are strictly increasing even when t does not increase.
func NewAt(t time.Time) UUID {
	var u UUID
	_, _ = rand.Read(u[6:]) // crypto/rand.Read never fails (Go 1.24+).

	ms := t.UnixMilli()
	gen.Lock()
	if ms > gen.lastMS {
		gen.lastMS = ms
		gen.counter = binary.BigEndian.Uint16(u[6:8]) & 0x07ff // leave room to count up
	} else {
		gen.counter++
		if gen.counter > 0x0fff {
			gen.lastMS++
			gen.counter = 0
		}
		ms = gen.lastMS
	}
	counter := gen.counter
	gen.Unlock()

	u[0] = byte(ms >> 40)
	u[1] = byte(ms >> 32)
	u[2] = byte(ms >> 24)
	u[3] = byte(ms >> 16)
	u[4] = byte(ms >> 8)
	u[5] = byte(ms)
	u[6] = 0x70 | byte(counter>>8)&0x0f // version 7
	u[7] = byte(counter)
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return u
}

// Parse parses the canonical 36-character text form of a UUID of any
// version, upper or lower case.
func Parse(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, ErrSyntax
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return UUID{}, ErrSyntax
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

const hexdigits = "0123456789abcdef"

// String returns the canonical lower-case text form.
func (u UUID) String() string {
	var b [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j] = hexdigits[c>>4]
		b[j+1] = hexdigits[c&0x0f]
		j += 2
	}
	return string(b[:])
}

// Version reports the UUID version (7 for IDs made by [New]).
func (u UUID) Version() int { return int(u[6] >> 4) }

// IsZero reports whether u is the nil UUID.
func (u UUID) IsZero() bool { return u == UUID{} }

// Time returns the timestamp of a version 7 UUID (millisecond precision).
// For other versions the result has no meaning.
func (u UUID) Time() time.Time {
	ms := int64(u[0])<<40 | int64(u[1])<<32 | int64(u[2])<<24 | int64(u[3])<<16 | int64(u[4])<<8 | int64(u[5])
	return time.UnixMilli(ms)
}
