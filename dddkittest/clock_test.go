package dddkittest_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/repository"
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

type nopSink struct{}

func (nopSink) Append(context.Context, ...aggregate.Envelope) error { return nil }

// The clock reaches aggregates a repository loads when it is among the
// repository's aggregate options.
func TestClockReachesLoadedAggregates(t *testing.T) {
	t.Parallel()
	c := dddkittest.NewClock(time.Time{})
	mapping := repository.Mapping[*counter]{
		Type:   "counter",
		Encode: func(a *counter) ([]byte, error) { return json.Marshal(a.n) },
		Decode: func(id string, state []byte) (*counter, error) {
			a := &counter{}
			a.Init(id, "counter", a.apply)
			return a, json.Unmarshal(state, &a.n)
		},
	}
	repo, err := repository.NewMemory(nopSink{}, mapping, &repository.MemoryConfig{
		Options: []aggregate.Option{aggregate.WithClock(c.Now)},
	})
	require.NoError(t, err)
	ctx := context.Background()
	fresh := newCounter()
	require.NoError(t, fresh.Add(1))
	require.NoError(t, repo.Save(ctx, fresh))

	c.Advance(48 * time.Hour)
	loaded, err := repo.Load(ctx, "c-1")
	require.NoError(t, err)
	require.Equal(t, 1, loaded.n)
	require.NoError(t, loaded.Add(1))
	require.Equal(t, dddkittest.T0.Add(48*time.Hour), loaded.Changes()[0].OccurredAt)
}
