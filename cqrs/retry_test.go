package cqrs_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/retry"
)

func conflict() error {
	return &aggregate.ConflictError{Type: "user", ID: "u1", Expected: 1, Actual: 2}
}

func retryBus(t *testing.T, cfg *cqrs.RetryConfig) *cqrs.Bus {
	t.Helper()
	mw, err := cqrs.Retry(cfg)
	require.NoError(t, err)
	return newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{mw}})
}

// failing registers a VerifyEmail handler that fails with the errors given,
// in turn, and then succeeds; it returns the attempt counter.
func failing(t *testing.T, bus *cqrs.Bus, errs ...error) *atomic.Int32 {
	t.Helper()
	var calls atomic.Int32
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (int32, error) {
		n := calls.Add(1)
		if int(n) <= len(errs) {
			return 0, errs[n-1]
		}
		return n, nil
	}))
	return &calls
}

func TestRetrySucceedsAfterConflicts(t *testing.T) {
	t.Parallel()
	bus := retryBus(t, &cqrs.RetryConfig{Policy: retry.Policy{BaseDelay: time.Microsecond}})
	calls := failing(t, bus, conflict(), conflict())

	n, err := cqrs.Send[int32](context.Background(), bus, VerifyEmail{})
	require.NoError(t, err)
	require.Equal(t, int32(3), n, "the third attempt's result")
	require.Equal(t, int32(3), calls.Load())
}

func TestRetryGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	bus := retryBus(t, &cqrs.RetryConfig{Policy: retry.Policy{MaxAttempts: 4, BaseDelay: time.Microsecond}})
	calls := failing(t, bus, conflict(), conflict(), conflict(), conflict(), conflict())

	_, err := cqrs.Send[int32](context.Background(), bus, VerifyEmail{})
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	var ce *aggregate.ConflictError
	require.ErrorAs(t, err, &ce)
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, 4, re.Attempts)
	require.Nil(t, re.CtxErr)
	require.EqualError(t, err, "cqrs: command cqrs_test.VerifyEmail: gave up after 4 attempts: aggregate: concurrency conflict on user u1: expected version 1, found 2")
	require.Equal(t, int32(4), calls.Load())
}

func TestRetryDefaultsToThreeAttempts(t *testing.T) {
	t.Parallel()
	bus := retryBus(t, nil)
	calls := failing(t, bus, aggregate.ErrConcurrencyConflict, aggregate.ErrConcurrencyConflict, aggregate.ErrConcurrencyConflict)

	start := time.Now()
	_, err := cqrs.Send[int32](context.Background(), bus, VerifyEmail{})
	elapsed := time.Since(start)
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	require.ErrorContains(t, err, "after 3 attempts")
	require.Equal(t, int32(3), calls.Load())
	// Default waits: [5ms, 10ms] then [10ms, 20ms].
	require.GreaterOrEqual(t, elapsed, 15*time.Millisecond)
}

func TestRetryOnlyRetryableErrors(t *testing.T) {
	t.Parallel()
	other := errors.New("email taken")
	bus := retryBus(t, &cqrs.RetryConfig{Policy: retry.Policy{BaseDelay: time.Microsecond}})
	calls := failing(t, bus, other)

	_, err := cqrs.Send[int32](context.Background(), bus, VerifyEmail{})
	require.Same(t, other, err, "not retried, not wrapped")
	require.Equal(t, int32(1), calls.Load())
}

func TestRetryCustomRetryable(t *testing.T) {
	t.Parallel()
	transient := errors.New("transient")
	bus := retryBus(t, &cqrs.RetryConfig{
		Policy:    retry.Policy{BaseDelay: time.Microsecond},
		Retryable: func(err error) bool { return errors.Is(err, transient) },
	})
	calls := failing(t, bus, transient, transient)
	n, err := cqrs.Send[int32](context.Background(), bus, VerifyEmail{})
	require.NoError(t, err)
	require.Equal(t, int32(3), n)
	require.Equal(t, int32(3), calls.Load())

	bus = retryBus(t, &cqrs.RetryConfig{
		Policy:    retry.Policy{BaseDelay: time.Microsecond},
		Retryable: func(err error) bool { return errors.Is(err, transient) },
	})
	calls = failing(t, bus, conflict())
	_, err = cqrs.Send[int32](context.Background(), bus, VerifyEmail{})
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	require.Equal(t, int32(1), calls.Load(), "Retryable replaces the default")
}

func TestRetryOnRetrySeesEachFailedAttempt(t *testing.T) {
	t.Parallel()
	const attempts = 5
	var mu sync.Mutex
	var attemptsSeen []int
	var calls *atomic.Int32
	bus := retryBus(t, &cqrs.RetryConfig{
		Policy: retry.Policy{MaxAttempts: attempts, BaseDelay: time.Microsecond},
		OnRetry: func(_ context.Context, msg cqrs.Message, attempt int, err error) {
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, "cqrs_test.VerifyEmail", msg.Name)
			require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
			require.Equal(t, int32(attempt), calls.Load(), "called after attempt %d failed, before the next one ran", attempt)
			attemptsSeen = append(attemptsSeen, attempt)
		},
	})
	var conflicts []error
	for range attempts {
		conflicts = append(conflicts, conflict())
	}
	calls = failing(t, bus, conflicts...)

	_, err := cqrs.Send[int32](context.Background(), bus, VerifyEmail{})
	require.ErrorContains(t, err, "after 5 attempts")

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int{1, 2, 3, 4}, attemptsSeen, "once before each further attempt, none after the last")
}

func TestRetryStopsWhenContextEndsDuringBackoff(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bus := retryBus(t, &cqrs.RetryConfig{
		Policy: retry.Policy{BaseDelay: time.Hour, MaxDelay: time.Hour},
		OnRetry: func(context.Context, cqrs.Message, int, error) {
			t.Error("the second attempt never starts")
		},
	})
	var calls atomic.Int32
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (int32, error) {
		calls.Add(1)
		time.AfterFunc(10*time.Millisecond, cancel) // ends ctx during the hour's wait
		return 0, conflict()
	}))

	start := time.Now()
	_, err := cqrs.Send[int32](ctx, bus, VerifyEmail{})
	require.Less(t, time.Since(start), time.Minute, "did not sleep the hour")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, 1, re.Attempts)
	require.EqualError(t, err, "cqrs: command cqrs_test.VerifyEmail: gave up after 1 attempt: context canceled (last error: aggregate: concurrency conflict on user u1: expected version 1, found 2)")
	require.Equal(t, int32(1), calls.Load())
}

func TestRetryDoesNotWaitOnEndedContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	bus := retryBus(t, &cqrs.RetryConfig{
		Policy: retry.Policy{BaseDelay: time.Hour, MaxDelay: time.Hour},
		OnRetry: func(context.Context, cqrs.Message, int, error) {
			t.Error("no retry is scheduled on an ended context")
		},
	})
	calls := failing(t, bus, conflict())
	_, err := cqrs.Send[int32](ctx, bus, VerifyEmail{})
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	require.Equal(t, int32(1), calls.Load())
}

func TestRetryRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := cqrs.Retry(&cqrs.RetryConfig{Policy: retry.Policy{MaxAttempts: -1, BaseDelay: -time.Second, MaxDelay: -time.Second}})
	require.EqualError(t, err, "cqrs: RetryConfig: retry: Policy.MaxAttempts is -1, must be >= 0\n"+
		"retry: Policy.BaseDelay is -1s, must be >= 0\n"+
		"retry: Policy.MaxDelay is -1s, must be >= 0")

	_, err = cqrs.Retry(&cqrs.RetryConfig{Policy: retry.Policy{BaseDelay: time.Second, MaxDelay: time.Millisecond}})
	require.EqualError(t, err, "cqrs: RetryConfig: retry: Policy.BaseDelay (1s) is larger than MaxDelay (1ms)")

	_, err = cqrs.Retry(&cqrs.RetryConfig{Policy: retry.Policy{BaseDelay: 2 * time.Second}})
	require.NoError(t, err, "MaxDelay defaults to at least BaseDelay")
}

func TestRetryMaxAttemptsOneNeverRetries(t *testing.T) {
	t.Parallel()
	bus := retryBus(t, &cqrs.RetryConfig{Policy: retry.Policy{MaxAttempts: 1}})
	calls := failing(t, bus, conflict())
	_, err := cqrs.Send[int32](context.Background(), bus, VerifyEmail{})
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	require.ErrorContains(t, err, "gave up after 1 attempt:")
	require.Equal(t, int32(1), calls.Load())
}
