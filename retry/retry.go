package retry

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/dddkit/dddkit/internal/check"
)

// Policy bounds how often an operation is retried and how long to wait
// between attempts. It is plain data, safe to copy and compare.
//
// A zero field means "the default of whoever uses the policy": each package
// that takes a Policy in its config documents its defaults and fills them
// in with [Policy.WithDefaults]. [Policy.Delay] and [Policy.Do] use the
// fields as they are.
type Policy struct {
	// MaxAttempts is how many times the operation runs at most, the first
	// run included: 1 means never retry. Negative is an error.
	MaxAttempts int

	// BaseDelay bounds the wait after the first failure; the bound doubles
	// with each further failure in a row, up to MaxDelay. The actual wait
	// is drawn at random between half the bound and the bound. Negative is
	// an error.
	BaseDelay time.Duration

	// MaxDelay caps every wait. A MaxDelay smaller than BaseDelay is an
	// error unless it is zero; a zero MaxDelay with a positive BaseDelay
	// caps at BaseDelay (every wait is then about BaseDelay). Negative is
	// an error.
	MaxDelay time.Duration
}

// Validate reports every invalid field of p, joined with errors.Join; nil
// when p is valid. Each message names the field, such as
//
//	retry: Policy.MaxAttempts is -1, must be >= 0
//
// Zero fields are valid: they mean "the default". Callers wrap the error
// with the name of their config field.
func (p Policy) Validate() error {
	e := check.New("retry: Policy")
	check.NotNegative(e, "MaxAttempts", p.MaxAttempts)
	check.NotNegative(e, "BaseDelay", p.BaseDelay)
	check.NotNegative(e, "MaxDelay", p.MaxDelay)
	if p.MaxDelay > 0 && p.BaseDelay > p.MaxDelay {
		e.Addf("BaseDelay (%s) is larger than MaxDelay (%s)", p.BaseDelay, p.MaxDelay)
	}
	return e.Err()
}

// WithDefaults returns p with its zero fields taken from def. A zero
// MaxDelay becomes the larger of def.MaxDelay and p.BaseDelay, so that a
// caller who only raises BaseDelay above the default cap gets a valid
// policy.
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

// Delay returns the wait after the attempt-th failure in a row (1-based;
// smaller values count as 1): a random duration in [bound/2, bound]
// ("equal jitter"), where bound = min(cap, BaseDelay·2^(attempt-1)) and cap
// is the larger of MaxDelay and BaseDelay. The jitter keeps writers that
// collided from colliding again in lockstep. Delay never overflows, however
// large attempt is, and is 0 for a zero BaseDelay.
func (p Policy) Delay(attempt int) time.Duration {
	limit := max(p.MaxDelay, p.BaseDelay)
	bound := max(p.BaseDelay, 0)
	for i := 1; i < attempt; i++ {
		if bound > limit/2 { // doubling would pass the cap (or overflow)
			bound = limit
			break
		}
		bound *= 2
	}
	bound = min(bound, limit)
	half := bound / 2
	return half + rand.N(bound-half+1)
}

// Do runs fn until it returns nil, returns an error that retryable rejects,
// or has run MaxAttempts times (at least once), waiting [Policy.Delay]
// between attempts. A nil retryable retries every error. fn gets ctx.
//
// Do returns nil on success and a rejected error unchanged. When the last
// attempt fails with a retryable error, it returns an [*Error] with the
// number of attempts that wraps that error. Do does not wait on an ended
// context: if ctx ends before or during a wait, it stops at once and
// returns an [*Error] that wraps both ctx.Err() and the last error.
func (p Policy) Do(ctx context.Context, retryable func(error) bool, fn func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil || (retryable != nil && !retryable(err)) {
			return err
		}
		if attempt >= p.MaxAttempts {
			return &Error{Attempts: attempt, Err: err}
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return &Error{Attempts: attempt, Err: err, CtxErr: ctxErr}
		}
		if ctxErr := Sleep(ctx, p.Delay(attempt)); ctxErr != nil {
			return &Error{Attempts: attempt, Err: err, CtxErr: ctxErr}
		}
	}
}

// Error is returned by [Policy.Do], and by the dddkit packages that retry,
// when they give up on an operation that kept failing with a retryable
// error: after the last allowed attempt, or because the context ended
// while they waited to try again. It wraps the last error, so errors.Is
// and errors.As reach it (errors.Is(err, aggregate.ErrConcurrencyConflict)
// still holds), and, in the second case, the context's error.
//
// Its message has no package prefix; the packages that return it add
// their own context, such as "cqrs: command user.register: ".
type Error struct {
	Attempts int   // how many times the operation ran
	Err      error // the last attempt's error
	CtxErr   error // the context's error if it ended during a wait; else nil
}

// Error returns "gave up after N attempts: <last error>", or, when the
// context ended, "gave up after N attempts: <context error> (last error:
// <last error>)".
func (e *Error) Error() string {
	if e.CtxErr != nil {
		return fmt.Sprintf("gave up after %d attempt%s: %v (last error: %v)", e.Attempts, plural(e.Attempts), e.CtxErr, e.Err)
	}
	return fmt.Sprintf("gave up after %d attempt%s: %v", e.Attempts, plural(e.Attempts), e.Err)
}

// Unwrap returns the context's error, if set, and the last error.
func (e *Error) Unwrap() []error {
	if e.CtxErr != nil {
		return []error{e.CtxErr, e.Err}
	}
	return []error{e.Err}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Sleep waits for d or until ctx ends, whichever comes first, and returns
// ctx.Err() in the second case. A d <= 0 returns at once with ctx.Err().
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
