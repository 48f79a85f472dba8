package cqrs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/retry"
)

// RetryConfig configures [Retry]. The zero value (or a nil *RetryConfig)
// means: up to 3 attempts, on [aggregate.ErrConcurrencyConflict], waiting
// about 10ms and then 20ms in between.
type RetryConfig struct {
	// Policy bounds the attempts and the waits between them; see
	// [retry.Policy]. Its zero fields mean 3 attempts (the first
	// included), a BaseDelay of 10ms and a MaxDelay of 1s (or BaseDelay,
	// if larger). MaxAttempts 1 means never retry.
	Policy retry.Policy

	// Retryable reports whether an error is worth another attempt. nil
	// means errors.Is(err, aggregate.ErrConcurrencyConflict): retry when
	// someone else changed the aggregate between load and save, and on
	// nothing else (not on aggregate.ErrAlreadyExists, which another
	// attempt cannot fix).
	Retryable func(err error) bool

	// OnRetry, if set, is called before each further attempt, after the
	// wait, with the number of the attempt that failed (1 for the first)
	// and its error; for logs and metrics.
	OnRetry func(ctx context.Context, msg Message, attempt int, err error)
}

// defaultRetry is the policy of a zero RetryConfig.
var defaultRetry = retry.Policy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second}

// Retry returns a middleware that runs the handler again when it fails with
// a retryable error (by default [aggregate.ErrConcurrencyConflict]), at most
// Policy.MaxAttempts times in all, waiting a jittered, exponentially
// growing delay in between; see [RetryConfig] and [retry.Policy.Do]. A nil
// cfg means the defaults; an invalid one is an error that names every bad
// field.
//
// When the last attempt fails with a retryable error, the dispatch returns
// an error wrapping a [*retry.Error] that says how many attempts ran and
// wraps the last error, so errors.Is(err, aggregate.ErrConcurrencyConflict)
// still holds:
//
//	cqrs: command user.verify: gave up after 3 attempts: aggregate: concurrency conflict on user u1: ...
//
// If ctx ends during a wait, Retry stops at once; the [*retry.Error] then
// wraps ctx.Err() too. Errors that are not retryable, and successes, pass
// through unchanged.
//
// Each attempt re-runs everything inside Retry in the chain, so the
// handler must load the aggregate afresh each time (the usual
// load → change → save handler does), and [Transaction] belongs inside
// Retry: each attempt then runs in a fresh transaction.
func Retry(cfg *RetryConfig) (Middleware, error) {
	c := RetryConfig{}
	if cfg != nil {
		c = *cfg
	}
	if err := c.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("cqrs: RetryConfig: %w", err)
	}
	p := c.Policy.WithDefaults(defaultRetry)
	retryable := c.Retryable
	if retryable == nil {
		retryable = isConflict
	}
	onRetry := c.OnRetry
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg Message) (any, error) {
			var (
				res     any
				attempt int
				last    error
			)
			err := p.Do(ctx, retryable, func(ctx context.Context) error {
				attempt++
				if attempt > 1 && onRetry != nil {
					onRetry(ctx, msg, attempt-1, last)
				}
				var err error
				res, err = next(ctx, msg)
				last = err
				return err
			})
			if err == nil {
				return res, nil
			}
			if err != last { //nolint:errorlint // identity: Do gave up (a *retry.Error), it did not pass the handler's error through
				return nil, fmt.Errorf("cqrs: %s %s: %w", msg.Kind, msg.Name, err)
			}
			return res, err
		}
	}, nil
}

func isConflict(err error) bool { return errors.Is(err, aggregate.ErrConcurrencyConflict) }
