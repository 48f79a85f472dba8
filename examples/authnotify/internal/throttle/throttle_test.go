package throttle_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/examples/authnotify/internal/throttle"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }
func newClock() *clock                   { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }
func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	require.ErrorIs(t, err, throttle.ErrThrottled)
	var ra interface{ RetryAfter() time.Duration }
	require.True(t, errors.As(err, &ra))
	return ra.RetryAfter()
}

// The one test both stores pass.
func testThrottle(t *testing.T, open func(cfg *throttle.Config) throttle.Throttle) {
	ctx := context.Background()
	t.Run("account back-off", func(t *testing.T) {
		c := newClock()
		th := open(&throttle.Config{PerAddress: -1, Now: c.Now})
		const acc = "victim@example.com"
		for i := range throttle.MaxFailures {
			require.NoError(t, th.Check(ctx, acc, "10.0.0.1"), "attempt %d", i+1)
			require.NoError(t, th.Failed(ctx, acc, "10.0.0.1"))
		}
		require.Equal(t, 30*time.Second, retryAfter(t, th.Check(ctx, acc, "10.0.0.2")), "locked, from any address")
		require.NoError(t, th.Check(ctx, "other@example.com", "10.0.0.1"), "other accounts are not")
		c.Advance(30 * time.Second)
		require.NoError(t, th.Check(ctx, acc, "10.0.0.1"), "one try after the back-off")
		require.NoError(t, th.Failed(ctx, acc, "10.0.0.1"))
		require.Equal(t, time.Minute, retryAfter(t, th.Check(ctx, acc, "10.0.0.1")), "doubled")
		for range 10 {
			c.Advance(throttle.MaxBackoff)
			require.NoError(t, th.Failed(ctx, acc, "10.0.0.1"))
		}
		require.Equal(t, throttle.MaxBackoff, retryAfter(t, th.Check(ctx, acc, "10.0.0.1")), "capped")
		c.Advance(throttle.MaxBackoff)
		require.NoError(t, th.Succeeded(ctx, acc))
		for range throttle.MaxFailures - 1 {
			require.NoError(t, th.Failed(ctx, acc, "10.0.0.1"))
		}
		require.NoError(t, th.Check(ctx, acc, "10.0.0.1"), "a success reset the count")
	})
	t.Run("address limit", func(t *testing.T) {
		c := newClock()
		th := open(&throttle.Config{PerAddress: 3, Now: c.Now})
		for _, acc := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			require.NoError(t, th.Check(ctx, acc, "192.0.2.7"))
			require.NoError(t, th.Failed(ctx, acc, "192.0.2.7"))
		}
		c.Advance(20 * time.Second)
		require.Equal(t, 40*time.Second, retryAfter(t, th.Check(ctx, "d@example.com", "192.0.2.7")))
		require.NoError(t, th.Check(ctx, "d@example.com", "192.0.2.8"), "other addresses are not")
		c.Advance(40 * time.Second)
		require.NoError(t, th.Check(ctx, "d@example.com", "192.0.2.7"), "a new minute")
		require.NoError(t, th.Failed(ctx, "d@example.com", "192.0.2.7"))
		require.NoError(t, th.Check(ctx, "d@example.com", "192.0.2.7"), "the count started again")
	})
}

func TestMemory(t *testing.T) {
	t.Parallel()
	testThrottle(t, func(cfg *throttle.Config) throttle.Throttle { return throttle.NewMemory(cfg) })
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	pgtest.DatabaseURL(t) // skips here, not in the subtests that build a store
	testThrottle(t, func(cfg *throttle.Config) throttle.Throttle {
		pool, _ := pgtest.Schema(t)
		require.NoError(t, throttle.Migrate(context.Background(), pool))
		require.NoError(t, throttle.Migrate(context.Background(), pool), "idempotent")
		th, err := throttle.NewPostgres(pool, cfg)
		require.NoError(t, err)
		return th
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	require.Equal(t, time.Duration(0), throttle.Backoff(4))
	require.Equal(t, 30*time.Second, throttle.Backoff(5))
	require.Equal(t, 60*time.Second, throttle.Backoff(6))
	require.Equal(t, 15*time.Minute, throttle.Backoff(1000))
}
