package cqrs

import (
	"context"
	"errors"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/backoff"
)

// RetryConfig configures [Retry]. The zero value (or a nil *RetryConfig)
// means: up to 3 attempts, on [aggregate.ErrConcurrencyConflict], waiting
// about 10ms and then 20ms in between.
type RetryConfig struct {
	// MaxAttempts is how many times the handler runs at most, the first
	// attempt included. 0 means 3; 1 means never retry. Negative is an error.
	MaxAttempts int

	// BaseDelay is the upper bound of the wait before the second attempt;
	// each further wait bound doubles, up to MaxDelay. The actual wait is
	// drawn at random between half the bound and the bound ("equal
	// jitter"), so that writers that collided do not collide again in
	// lockstep. 0 means 10ms. Negative is an error.
	BaseDelay time.Duration

	// MaxDelay caps every wait. 0 means 1s, or BaseDelay if that is
	// larger. Negative, or smaller than BaseDelay, is an error.
	MaxDelay time.Duration

	// Retryable reports whether an error is worth another attempt. nil
	// means errors.Is(err, aggregate.ErrConcurrencyConflict): retry when
	// someone else changed the aggregate between load and save, and on
	// nothing else.
	Retryable func(err error) bool

	// OnRetry, if set, is called before each wait with the number of the
	// attempt that failed (1 for the first), its error and the chosen
	// delay; for logs and metrics.
	OnRetry func(ctx context.Context, msg Message, attempt int, err error, delay time.Duration)
}

const (
	defaultMaxAttempts = 3
	defaultBaseDelay   = 10 * time.Millisecond
	defaultMaxDelay    = time.Second
)

// Retry returns a middleware that runs the handler again when it fails with
// a retryable error (by default [aggregate.ErrConcurrencyConflict]), at most
// cfg.MaxAttempts times in all, waiting a jittered, exponentially growing
// delay in between; see [RetryConfig]. A nil cfg means the defaults; an
// invalid one is an error that names every bad field.
//
// When the last attempt fails with a retryable error, the dispatch returns a
// [*RetryError] that says how many attempts ran and wraps the last error,
// so errors.Is(err, aggregate.ErrConcurrencyConflict) still holds. If ctx
// ends during a wait, Retry stops at once and returns a *RetryError that
// wraps both ctx.Err() and the last error. Errors that are not retryable,
// and successes, pass through unchanged.
//
// Each attempt re-runs everything inside Retry in the chain, so the
// handler must load the aggregate afresh each time (the usual
// load → change → save handler does) and a transaction middleware belongs
// inside Retry.
func Retry(cfg *RetryConfig) (Middleware, error) {
	c := RetryConfig{}
	if cfg != nil {
		c = *cfg
	}
	p := backoff.Policy{MaxAttempts: c.MaxAttempts, BaseDelay: c.BaseDelay, MaxDelay: c.MaxDelay}
	if err := p.Check("cqrs: RetryConfig"); err != nil {
		return nil, err
	}
	p = p.WithDefaults(backoff.Policy{MaxAttempts: defaultMaxAttempts, BaseDelay: defaultBaseDelay, MaxDelay: defaultMaxDelay})
	c.MaxAttempts, c.BaseDelay, c.MaxDelay = p.MaxAttempts, p.BaseDelay, p.MaxDelay
	if c.Retryable == nil {
		c.Retryable = isConflict
	}
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg Message) (any, error) {
			for attempt := 1; ; attempt++ {
				res, err := next(ctx, msg)
				if err == nil || !c.Retryable(err) {
					return res, err
				}
				if attempt >= c.MaxAttempts {
					return nil, &RetryError{Kind: msg.Kind, Name: msg.Name, Attempts: attempt, Err: err}
				}
				if ctxErr := ctx.Err(); ctxErr != nil {
					return nil, &RetryError{Kind: msg.Kind, Name: msg.Name, Attempts: attempt, Err: err, CtxErr: ctxErr}
				}
				delay := c.backoff(attempt)
				if c.OnRetry != nil {
					c.OnRetry(ctx, msg, attempt, err, delay)
				}
				if ctxErr := backoff.Sleep(ctx, delay); ctxErr != nil {
					return nil, &RetryError{Kind: msg.Kind, Name: msg.Name, Attempts: attempt, Err: err, CtxErr: ctxErr}
				}
			}
		}
	}, nil
}

func isConflict(err error) bool { return errors.Is(err, aggregate.ErrConcurrencyConflict) }

// backoff returns the wait after the given failed attempt (1-based); see
// [backoff.Policy.Delay].
func (c *RetryConfig) backoff(attempt int) time.Duration {
	return backoff.Policy{BaseDelay: c.BaseDelay, MaxDelay: c.MaxDelay}.Delay(attempt)
}
