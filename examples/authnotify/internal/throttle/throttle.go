// Package throttle limits failed logins, per account and per client
// address.
//
// An account is locked after [MaxFailures] consecutive failed logins: every
// login for it, with the right password too, is refused until a back-off
// has passed that starts at [BaseBackoff] and doubles with each further
// failure up to [MaxBackoff]; a success resets it. A client address is
// refused for the rest of the minute once it failed Config.PerAddress
// logins in that minute. Refusals are errors matching [ErrThrottled] that
// carry a RetryAfter() time.Duration, which the HTTP port answers with 429
// and a Retry-After header.
//
// Two stores keep the state: [Memory] (one process, embedded mode) and
// [Postgres] (shared by every replica). Keys are stored hashed, so no
// email address lands in the table.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
)

// The account policy.
const (
	MaxFailures = 5
	BaseBackoff = 30 * time.Second
	MaxBackoff  = 15 * time.Minute
	// Window is the period the per-address limit counts failures over.
	Window = time.Minute
	// DefaultPerAddress is the per-address limit when Config.PerAddress is 0.
	DefaultPerAddress = 30
)

// ErrThrottled means the login is refused for now. Errors matching it
// have a RetryAfter() time.Duration method.
var ErrThrottled = errors.New("throttle: too many failed logins")

// Throttle is what both stores implement.
type Throttle interface {
	// Check returns an error matching ErrThrottled when account or address
	// is blocked at the moment. It is cheap: call it before any hashing.
	Check(ctx context.Context, account, address string) error
	// Failed records a failed login of account from address.
	Failed(ctx context.Context, account, address string) error
	// Succeeded resets the failures of account.
	Succeeded(ctx context.Context, account string) error
}

// Config configures a store; nil or the zero value means the defaults.
type Config struct {
	// PerAddress is how many failed logins one client address may make per
	// minute; 0 means DefaultPerAddress, negative means no address limit.
	PerAddress int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (c *Config) withDefaults() Config {
	var out Config
	if c != nil {
		out = *c
	}
	if out.PerAddress == 0 {
		out.PerAddress = DefaultPerAddress
	}
	if out.Now == nil {
		out.Now = time.Now
	}
	return out
}

// Backoff is the lock after n consecutive failures (0 below MaxFailures).
func Backoff(n int) time.Duration {
	if n < MaxFailures {
		return 0
	}
	d := BaseBackoff
	for i := MaxFailures; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	return min(d, MaxBackoff)
}

func accountKey(account string) string { return hashKey("account:" + account) }
func addressKey(address string) string { return hashKey("address:" + address) }

func hashKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// throttled matches ErrThrottled and carries the Retry-After hint.
type throttled struct{ after time.Duration }

func (e *throttled) Error() string             { return ErrThrottled.Error() }
func (e *throttled) Is(target error) bool      { return target == ErrThrottled }
func (e *throttled) RetryAfter() time.Duration { return e.after }

// state is one key's record.
type state struct {
	failures     int       // account: consecutive failures; address: failures in the window
	blockedUntil time.Time // account only
	windowStart  time.Time // address only
}

// verdict decides from the two records.
func verdict(now time.Time, perAddress int, acc, addr *state) error {
	var wait time.Duration
	if acc != nil && now.Before(acc.blockedUntil) {
		wait = acc.blockedUntil.Sub(now)
	}
	if addr != nil && perAddress > 0 && addr.failures >= perAddress {
		if end := addr.windowStart.Add(Window); now.Before(end) {
			wait = max(wait, end.Sub(now))
		}
	}
	if wait > 0 {
		return &throttled{after: wait}
	}
	return nil
}
