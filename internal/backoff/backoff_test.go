package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDelayStaysWithinDoublingBoundsAndCap(t *testing.T) {
	t.Parallel()
	p := Policy{BaseDelay: 10 * time.Millisecond, MaxDelay: 70 * time.Millisecond}
	bounds := []time.Duration{10, 20, 40, 70, 70, 70}
	for n, b := range bounds {
		b *= time.Millisecond
		for range 200 {
			d := p.Delay(n + 1)
			require.GreaterOrEqual(t, d, b/2, "attempt %d", n+1)
			require.LessOrEqual(t, d, b, "attempt %d", n+1)
		}
	}
	// Huge attempt numbers neither overflow nor pass the cap.
	require.LessOrEqual(t, Policy{BaseDelay: time.Hour, MaxDelay: 1<<62 - 1}.Delay(1000), time.Duration(1<<62-1))
}

func TestCheckJoinsEveryProblem(t *testing.T) {
	t.Parallel()
	require.NoError(t, Policy{}.Check("x: P"))
	err := Policy{MaxAttempts: -1, BaseDelay: -time.Second, MaxDelay: -time.Second}.Check("x: P")
	require.ErrorContains(t, err, "x: P.MaxAttempts is -1, must be >= 0")
	require.ErrorContains(t, err, "x: P.BaseDelay is -1s, must be >= 0")
	require.ErrorContains(t, err, "x: P.MaxDelay is -1s, must be >= 0")
	require.EqualError(t, Policy{BaseDelay: 2 * time.Second, MaxDelay: time.Second}.Check("x: P"),
		"x: P.BaseDelay (2s) is larger than MaxDelay (1s)")
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	def := Policy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second}
	require.Equal(t, def, Policy{}.WithDefaults(def))
	require.Equal(t, Policy{MaxAttempts: 7, BaseDelay: 5 * time.Second, MaxDelay: 5 * time.Second},
		Policy{MaxAttempts: 7, BaseDelay: 5 * time.Second}.WithDefaults(def))
}

func TestSleepStopsWithContext(t *testing.T) {
	t.Parallel()
	require.NoError(t, Sleep(context.Background(), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled)
}
