package dddkittest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
)

func TestClockNowAdvanceSet(t *testing.T) {
	t.Parallel()
	c := dddkittest.NewClock(time.Time{})
	require.Equal(t, dddkittest.T0, c.Now())
	require.Equal(t, dddkittest.T0.Add(time.Minute), c.Advance(time.Minute))
	require.Equal(t, dddkittest.T0.Add(time.Minute), c.Now())
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c.Set(at)
	require.Equal(t, at, c.Now())
	require.Equal(t, at, dddkittest.NewClock(at).Now())
}

func TestClockIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	c := dddkittest.NewClock(time.Time{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Second)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	require.Equal(t, dddkittest.T0.Add(800*time.Second), c.Now())
}

// The clock drives the times an aggregate records, and moving it moves them.
func TestClockDrivesRecordedTimes(t *testing.T) {
	t.Parallel()
	c := dddkittest.NewClock(time.Time{})
	agg := newCounter()
	require.NoError(t, aggregate.Replay(agg, nil, aggregate.WithClock(c.Now)))
	require.NoError(t, agg.Add(1))
	c.Advance(time.Hour)
	require.NoError(t, agg.Add(1))
	ch := agg.Changes()
	require.Equal(t, dddkittest.T0, ch[0].OccurredAt)
	require.Equal(t, dddkittest.T0.Add(time.Hour), ch[1].OccurredAt)
}
