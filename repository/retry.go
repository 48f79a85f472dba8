package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/backoff"
)

// Retry makes Update re-run its whole load → fn → save cycle when the save
// loses a race with another writer ([aggregate.ErrConcurrencyConflict]).
// Each attempt loads the aggregate afresh and runs fn again, so fn must
// only act on the aggregate it is given. A nil *Retry in a config means no
// retry: the conflict goes back to the caller (which may retry at another
// level, such as the cqrs retry middleware; do not stack both).
//
// The zero Retry means: up to 3 attempts, waiting about 10ms and then 20ms
// in between.
type Retry struct {
	// MaxAttempts is how many times Update runs at most, the first attempt
	// included. 0 means 3; 1 means never retry. Negative is an error.
	MaxAttempts int

	// BaseDelay bounds the wait before the second attempt; each further
	// bound doubles, up to MaxDelay. The actual wait is drawn at random
	// between half the bound and the bound ("equal jitter"), so writers
	// that collided do not collide again in lockstep. 0 means 10ms.
	// Negative is an error.
	BaseDelay time.Duration

	// MaxDelay caps every wait. 0 means 1s, or BaseDelay if that is
	// larger. Negative, or smaller than BaseDelay, is an error.
	MaxDelay time.Duration
}

const (
	defaultAttempts  = 3
	defaultBaseDelay = 10 * time.Millisecond
	defaultMaxDelay  = time.Second
)

// normalize validates r and fills in defaults. A nil r gives a policy of
// one attempt.
func (r *Retry) normalize() (Retry, error) {
	if r == nil {
		return Retry{MaxAttempts: 1}, nil
	}
	p := backoff.Policy{MaxAttempts: r.MaxAttempts, BaseDelay: r.BaseDelay, MaxDelay: r.MaxDelay}
	if err := p.Check("repository: Retry"); err != nil {
		return Retry{}, err
	}
	p = p.WithDefaults(backoff.Policy{MaxAttempts: defaultAttempts, BaseDelay: defaultBaseDelay, MaxDelay: defaultMaxDelay})
	c := Retry{MaxAttempts: p.MaxAttempts, BaseDelay: p.BaseDelay, MaxDelay: p.MaxDelay}
	return c, nil
}

// run calls attempt until it succeeds, fails with something other than a
// concurrency conflict, or the attempts are used up. r must be normalized.
func (r Retry) run(ctx context.Context, what string, attempt func(ctx context.Context) error) error {
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil || !errors.Is(err, aggregate.ErrConcurrencyConflict) {
			return err
		}
		if n >= r.MaxAttempts {
			if r.MaxAttempts == 1 {
				return err
			}
			return fmt.Errorf("repository: %s: gave up after %d attempts: %w", what, n, err)
		}
		t := time.NewTimer(r.backoff(n))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("repository: %s: stopped retrying after %d attempts: %w (last error: %w)", what, n, ctx.Err(), err)
		}
	}
}

// backoff returns the wait after the given failed attempt (1-based); see
// [backoff.Policy.Delay].
func (r Retry) backoff(attempt int) time.Duration {
	return backoff.Policy{BaseDelay: r.BaseDelay, MaxDelay: r.MaxDelay}.Delay(attempt)
}
