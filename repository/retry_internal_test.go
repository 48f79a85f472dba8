package repository

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/retry"
)

func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	none, err := newRetryPolicy(nil, "X.Retry")
	require.NoError(t, err)
	require.False(t, none.on, "nil means no retry")
	def, err := newRetryPolicy(&retry.Policy{}, "X.Retry")
	require.NoError(t, err)
	require.Equal(t, retryPolicy{policy: retry.Policy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second}, on: true}, def)
	_, err = newRetryPolicy(&retry.Policy{MaxAttempts: -2}, "X.Retry")
	require.EqualError(t, err, "repository: X.Retry: retry: Policy.MaxAttempts is -2, must be >= 0")

	// Without a policy the conflict comes back as it is, after one attempt.
	calls := 0
	conflict := &aggregate.ConflictError{Type: "t", ID: "1", Expected: 1, Actual: 2}
	err = none.run(t.Context(), "update t 1", func(context.Context) error { calls++; return conflict })
	require.Same(t, conflict, err)
	require.Equal(t, 1, calls)

	// With one, a give-up says what was being done.
	calls = 0
	two := retryPolicy{policy: retry.Policy{MaxAttempts: 2, BaseDelay: time.Microsecond}, on: true}
	err = two.run(t.Context(), "update t 1", func(context.Context) error { calls++; return conflict })
	require.EqualError(t, err, "repository: update t 1: gave up after 2 attempts: "+conflict.Error())
	require.Equal(t, 2, calls)
	other := errors.New("other")
	require.Same(t, other, two.run(t.Context(), "update t 1", func(context.Context) error { return other }), "not a conflict: not retried, not wrapped")
}
