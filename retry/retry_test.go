package retry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dddkit/dddkit/retry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestDelayStaysWithinDoublingBoundsAndCap(t *testing.T) {
	t.Parallel()
	p := retry.Policy{BaseDelay: 10 * time.Millisecond, MaxDelay: 70 * time.Millisecond}
	bounds := []time.Duration{10, 20, 40, 70, 70, 70}
	for n, b := range bounds {
		b *= time.Millisecond
		seen := map[time.Duration]bool{}
		for range 200 {
			d := p.Delay(n + 1)
			require.GreaterOrEqual(t, d, b/2, "attempt %d", n+1)
			require.LessOrEqual(t, d, b, "attempt %d", n+1)
			seen[d] = true
		}
		require.Greater(t, len(seen), 10, "attempt %d: the delay is jittered", n+1)
	}
}

func TestDelayEdgeCases(t *testing.T) {
	t.Parallel()
	// Huge attempt numbers neither overflow nor pass the cap.
	huge := retry.Policy{BaseDelay: time.Hour, MaxDelay: 1<<62 - 1}
	d := huge.Delay(1000)
	require.GreaterOrEqual(t, d, time.Duration(1<<62-1)/2)
	require.LessOrEqual(t, d, time.Duration(1<<62-1))

	// Attempts below 1 count as the first.
	p := retry.Policy{BaseDelay: 8 * time.Millisecond, MaxDelay: time.Second}
	for _, n := range []int{0, -5} {
		d := p.Delay(n)
		require.GreaterOrEqual(t, d, 4*time.Millisecond)
		require.LessOrEqual(t, d, 8*time.Millisecond)
	}

	// No base delay: no wait.
	require.Zero(t, retry.Policy{MaxDelay: time.Second}.Delay(5))

	// A zero MaxDelay caps at BaseDelay.
	for range 50 {
		d := retry.Policy{BaseDelay: 10 * time.Millisecond}.Delay(6)
		require.GreaterOrEqual(t, d, 5*time.Millisecond)
		require.LessOrEqual(t, d, 10*time.Millisecond)
	}
}

func TestValidateJoinsEveryProblem(t *testing.T) {
	t.Parallel()
	require.NoError(t, retry.Policy{}.Validate(), "zero fields mean the default")
	require.NoError(t, retry.Policy{MaxAttempts: 1, BaseDelay: time.Second}.Validate(), "zero MaxDelay with a BaseDelay")
	require.NoError(t, retry.Policy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: time.Second}.Validate())

	err := retry.Policy{MaxAttempts: -1, BaseDelay: -time.Second, MaxDelay: -time.Second}.Validate()
	require.EqualError(t, err, "retry: Policy.MaxAttempts is -1, must be >= 0\n"+
		"retry: Policy.BaseDelay is -1s, must be >= 0\n"+
		"retry: Policy.MaxDelay is -1s, must be >= 0")
	require.EqualError(t, retry.Policy{BaseDelay: 2 * time.Second, MaxDelay: time.Second}.Validate(),
		"retry: Policy.BaseDelay (2s) is larger than MaxDelay (1s)")
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	def := retry.Policy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second}
	require.Equal(t, def, retry.Policy{}.WithDefaults(def))
	require.Equal(t, retry.Policy{MaxAttempts: 7, BaseDelay: 5 * time.Second, MaxDelay: 5 * time.Second},
		retry.Policy{MaxAttempts: 7, BaseDelay: 5 * time.Second}.WithDefaults(def),
		"a zero MaxDelay grows to BaseDelay")
	set := retry.Policy{MaxAttempts: 1, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}
	require.Equal(t, set, set.WithDefaults(def), "set fields stay")
}

// failing returns an operation that fails with errs in turn, then
// succeeds, and a pointer to its call count.
func failing(errs ...error) (func(context.Context) error, *int) {
	calls := 0
	return func(context.Context) error {
		calls++
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	}, &calls
}

var errTransient = errors.New("transient")

func isTransient(err error) bool { return errors.Is(err, errTransient) }

func TestDoSucceedsAfterFailures(t *testing.T) {
	t.Parallel()
	fn, calls := failing(errTransient, errTransient)
	p := retry.Policy{MaxAttempts: 3, BaseDelay: time.Microsecond}
	require.NoError(t, p.Do(context.Background(), isTransient, fn))
	require.Equal(t, 3, *calls)
}

func TestDoGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	last := &wrapped{errTransient}
	fn, calls := failing(errTransient, errTransient, errTransient, last, errTransient)
	p := retry.Policy{MaxAttempts: 4, BaseDelay: time.Microsecond}
	err := p.Do(context.Background(), isTransient, fn)
	require.Equal(t, 4, *calls)
	require.ErrorIs(t, err, errTransient)
	var w *wrapped
	require.ErrorAs(t, err, &w)
	require.Same(t, last, w, "the last error is wrapped")
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, 4, re.Attempts)
	require.NoError(t, re.CtxErr)
	require.EqualError(t, err, "gave up after 4 attempts: wrapped: transient")
}

type wrapped struct{ err error }

func (w *wrapped) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

func TestDoOneAttemptNeverRetries(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1} {
		fn, calls := failing(errTransient)
		err := retry.Policy{MaxAttempts: n, BaseDelay: time.Hour}.Do(context.Background(), nil, fn)
		require.Equal(t, 1, *calls, "MaxAttempts %d", n)
		require.EqualError(t, err, "gave up after 1 attempt: transient")
	}
}

func TestDoReturnsNonRetryableAtOnce(t *testing.T) {
	t.Parallel()
	other := errors.New("email taken")
	fn, calls := failing(errTransient, other)
	err := retry.Policy{MaxAttempts: 5, BaseDelay: time.Microsecond}.Do(context.Background(), isTransient, fn)
	require.Same(t, other, err, "not retried, not wrapped")
	require.Equal(t, 2, *calls)
}

func TestDoNilRetryableRetriesEverything(t *testing.T) {
	t.Parallel()
	fn, calls := failing(errors.New("a"), errors.New("b"))
	require.NoError(t, retry.Policy{MaxAttempts: 3, BaseDelay: time.Microsecond}.Do(context.Background(), nil, fn))
	require.Equal(t, 3, *calls)
}

func TestDoStopsWhenContextEndsDuringWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	fn := func(context.Context) error {
		calls++
		time.AfterFunc(10*time.Millisecond, cancel)
		return errTransient
	}
	err := retry.Policy{MaxAttempts: 5, BaseDelay: time.Hour}.Do(ctx, nil, fn)
	require.Equal(t, 1, calls)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, errTransient)
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	require.Equal(t, 1, re.Attempts)
	require.EqualError(t, err, "gave up after 1 attempt: context canceled (last error: transient)")
}

func TestDoDoesNotWaitOnEndedContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fn, calls := failing(errTransient)
	err := retry.Policy{MaxAttempts: 5, BaseDelay: time.Hour}.Do(ctx, nil, fn)
	require.Equal(t, 1, *calls, "fn runs once; it decides what an ended context means to it")
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, errTransient)
}

func TestDoPassesContext(t *testing.T) {
	t.Parallel()
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "v")
	err := retry.Policy{MaxAttempts: 1}.Do(ctx, nil, func(ctx context.Context) error {
		require.Equal(t, "v", ctx.Value(key{}))
		return nil
	})
	require.NoError(t, err)
}

func TestSleep(t *testing.T) {
	t.Parallel()
	require.NoError(t, retry.Sleep(context.Background(), time.Millisecond))
	require.NoError(t, retry.Sleep(context.Background(), 0))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, retry.Sleep(ctx, time.Hour), context.Canceled)
	require.ErrorIs(t, retry.Sleep(ctx, 0), context.Canceled)
}
