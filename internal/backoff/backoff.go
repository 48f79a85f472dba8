// Package backoff is the bounded, jittered exponential backoff behind the
// retry settings of cqrs (RetryConfig), repository (Retry) and eventbus
// (RetryConfig): each package keeps its documented config type and
// converts it to a [Policy].
package backoff

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy bounds how often and how long to retry.
type Policy struct {
	MaxAttempts int           // attempts in all, the first included
	BaseDelay   time.Duration // bound of the first wait
	MaxDelay    time.Duration // cap of every wait
}

// Check returns one error per invalid field, joined, each starting with
// prefix (such as "cqrs: RetryConfig"); nil when p is valid. Zero fields
// are valid: they mean "the default".
func (p Policy) Check(prefix string) error {
	var errs []error
	if p.MaxAttempts < 0 {
		errs = append(errs, fmt.Errorf("%s.MaxAttempts is %d, must be >= 0", prefix, p.MaxAttempts))
	}
	if p.BaseDelay < 0 {
		errs = append(errs, fmt.Errorf("%s.BaseDelay is %s, must be >= 0", prefix, p.BaseDelay))
	}
	if p.MaxDelay < 0 {
		errs = append(errs, fmt.Errorf("%s.MaxDelay is %s, must be >= 0", prefix, p.MaxDelay))
	}
	if p.MaxDelay > 0 && p.BaseDelay > p.MaxDelay {
		errs = append(errs, fmt.Errorf("%s.BaseDelay (%s) is larger than MaxDelay (%s)", prefix, p.BaseDelay, p.MaxDelay))
	}
	return errors.Join(errs...)
}

// WithDefaults returns p with its zero fields set from def; a zero
// MaxDelay becomes the larger of def.MaxDelay and p.BaseDelay.
func (p Policy) WithDefaults(def Policy) Policy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = def.MaxAttempts
	}
	if p.BaseDelay == 0 {
		p.BaseDelay = def.BaseDelay
	}
	if p.MaxDelay == 0 {
		p.MaxDelay = max(def.MaxDelay, p.BaseDelay)
	}
	return p
}

// Delay returns the wait after the n-th failure in a row (1-based): a
// random duration in [bound/2, bound] ("equal jitter"), where bound =
// min(MaxDelay, BaseDelay·2^(n-1)). The jitter keeps writers that
// collided from colliding again in lockstep.
func (p Policy) Delay(n int) time.Duration {
	bound := p.BaseDelay
	for i := 1; i < n; i++ {
		if bound > p.MaxDelay/2 { // doubling would pass the cap (or overflow)
			bound = p.MaxDelay
			break
		}
		bound *= 2
	}
	bound = min(bound, p.MaxDelay)
	half := bound / 2
	return half + rand.N(bound-half+1)
}

// Sleep waits for d or until ctx ends, whichever comes first, and returns
// ctx.Err() in the second case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
