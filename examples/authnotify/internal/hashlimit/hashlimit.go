// Package hashlimit bounds how many password hashes run at once.
//
// An argon2id hash with the OWASP parameters takes 19 MiB and tens of
// milliseconds of one CPU. Without a bound, every registration, login and
// password change in flight hashes at the same time: memory grows with
// the load and every request, /healthz included, waits for a CPU. A
// [Hasher] lets at most a fixed number of hashes (Hash and Verify alike)
// run; a caller that cannot start one within a short wait gets an error
// matching [ErrBusy], which the HTTP port answers with 503 and a
// Retry-After header.
package hashlimit

import (
	"errors"
	"runtime"
	"time"

	"github.com/dddkit/dddkit/valueobject"
)

// DefaultWait is how long a caller waits for a free slot unless
// [Config.Wait] says otherwise.
const DefaultWait = 2 * time.Second

// ErrBusy means that every slot stayed taken for the whole wait. Errors
// matching it also have a RetryAfter() time.Duration method: the wait,
// a fair hint of when to try again.
var ErrBusy = errors.New("hashlimit: too many password hashes in progress")

// PasswordHasher is what a [Hasher] wraps; *valueobject.Hasher implements
// it (and so does the auth module's domain.PasswordHasher).
type PasswordHasher interface {
	Hash(pw valueobject.Password) (string, error)
	Verify(hash, plain string) error
}

// Config sets the bound.
type Config struct {
	// Max is how many hashes may run at once; 0 means runtime.NumCPU().
	Max int
	// Wait is how long a caller waits for a slot before failing with
	// [ErrBusy]; 0 means [DefaultWait].
	Wait time.Duration
}

// Hasher runs the hashes of the one it wraps, at most Max at a time. It
// is safe for concurrent use.
type Hasher struct {
	next  PasswordHasher
	slots chan struct{}
	wait  time.Duration
}

// New wraps next (nil: a valueobject.Hasher with the OWASP parameters)
// with the bound of cfg (nil: the defaults).
func New(next PasswordHasher, cfg *Config) (*Hasher, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.Max < 0 || c.Wait < 0 {
		return nil, errors.New("hashlimit: Max and Wait must not be negative")
	}
	if c.Max == 0 {
		c.Max = runtime.NumCPU()
	}
	if c.Wait == 0 {
		c.Wait = DefaultWait
	}
	if next == nil {
		next = &valueobject.Hasher{}
	}
	return &Hasher{next: next, slots: make(chan struct{}, c.Max), wait: c.Wait}, nil
}

// Max returns how many hashes may run at once.
func (h *Hasher) Max() int { return cap(h.slots) }

// Hash hashes pw once a slot is free.
func (h *Hasher) Hash(pw valueobject.Password) (string, error) {
	if err := h.acquire(); err != nil {
		return "", err
	}
	defer h.release()
	return h.next.Hash(pw)
}

// Verify checks plain against hash once a slot is free.
func (h *Hasher) Verify(hash, plain string) error {
	if err := h.acquire(); err != nil {
		return err
	}
	defer h.release()
	return h.next.Verify(hash, plain)
}

func (h *Hasher) acquire() error {
	select {
	case h.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-t.C:
		return &busyError{after: h.wait}
	}
}

func (h *Hasher) release() { <-h.slots }

// busyError matches ErrBusy and carries the Retry-After hint.
type busyError struct{ after time.Duration }

func (e *busyError) Error() string             { return ErrBusy.Error() }
func (e *busyError) Is(target error) bool      { return target == ErrBusy }
func (e *busyError) RetryAfter() time.Duration { return e.after }
