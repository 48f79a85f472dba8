package outbox

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/retry"
)

func TestRelayConfigRetryDefaults(t *testing.T) {
	t.Parallel()
	c, err := (*RelayConfig)(nil).withDefaults()
	require.NoError(t, err)
	require.Equal(t, retry.Policy{MaxAttempts: 10, BaseDelay: time.Second, MaxDelay: time.Minute}, c.Retry)
	require.Equal(t, DefaultBatchSize, c.BatchSize)
	require.Equal(t, DefaultMaxInFlight, c.MaxInFlight)
	require.Equal(t, DefaultPollInterval, c.PollInterval)
	require.Equal(t, DefaultShutdownTimeout, c.ShutdownTimeout)
	require.NotNil(t, c.Logger)
	c, err = (&RelayConfig{Retry: retry.Policy{MaxAttempts: 3}}).withDefaults()
	require.NoError(t, err)
	require.Equal(t, retry.Policy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: time.Minute}, c.Retry)
}

func TestAttemptForFollowsTheRetryPolicy(t *testing.T) {
	t.Parallel()
	var failures []AttemptFailure
	cfg, err := (&RelayConfig{
		Retry: retry.Policy{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond, MaxDelay: 150 * time.Millisecond},
		Hooks: Hooks{OnAttemptFailed: func(f AttemptFailure) { failures = append(failures, f) }},
	}).withDefaults()
	require.NoError(t, err)
	p := &processor{cfg: &cfg}
	boom := errors.New("boom")
	ev := aggregate.Envelope{ID: "e-7", AggregateType: "cart", AggregateID: "c1", Version: 1}

	a := p.attemptFor(Pending{Seq: 7, Event: ev}, boom)
	require.Equal(t, int64(7), a.Seq)
	require.Equal(t, 1, a.Attempts)
	require.Equal(t, "boom", a.Err)
	require.False(t, a.Final)
	require.GreaterOrEqual(t, a.Delay, 50*time.Millisecond)
	require.LessOrEqual(t, a.Delay, 100*time.Millisecond)

	a = p.attemptFor(Pending{Seq: 7, Event: ev, Attempts: 1}, boom)
	require.False(t, a.Final)
	require.GreaterOrEqual(t, a.Delay, 75*time.Millisecond, "the bound doubles to 200ms, capped at 150ms")
	require.LessOrEqual(t, a.Delay, 150*time.Millisecond)

	a = p.attemptFor(Pending{Seq: 7, Event: ev, Attempts: 2}, boom)
	require.Equal(t, 3, a.Attempts)
	require.True(t, a.Final, "the third failure is final")
	require.Zero(t, a.Delay)
	require.Len(t, failures, 3)
	require.True(t, failures[2].Final)
	require.Equal(t, ev, failures[2].Event)
	require.Equal(t, 3, failures[2].Attempts)
	require.ErrorIs(t, failures[2].Err, boom)
}

func TestGracefulContext(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.Background())
	ctx, stop := graceful(parent, 50*time.Millisecond)
	defer stop()
	cancel()
	require.NoError(t, ctx.Err(), "still alive right after the parent ended")
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("not cancelled after the grace period")
	}

	ctx2, stop2 := graceful(context.Background(), time.Hour)
	stop2()
	require.Error(t, ctx2.Err(), "stop cancels")
}

// An event's wave is the number of earlier events of its aggregate in
// the batch; aggregates of other types with the same ID count apart.
func TestWaveRanks(t *testing.T) {
	t.Parallel()
	it := func(typ, id string) Pending {
		return Pending{Event: aggregate.Envelope{AggregateType: typ, AggregateID: id}}
	}
	items := []Pending{it("cart", "a"), it("cart", "b"), it("cart", "a"), it("order", "a"), it("cart", "a"), it("cart", "b")}
	seen := map[aggstore.Key]int32{{Type: "cart", ID: "z"}: 4} // left over: cleared first
	rank, aggregates := waveRanks(items, seen)
	require.Equal(t, []int32{0, 0, 1, 0, 2, 1}, rank)
	require.Equal(t, 3, aggregates)
	require.Empty(t, seen, "no event's strings kept")
	rank, aggregates = waveRanks(nil, seen)
	require.Empty(t, rank)
	require.Zero(t, aggregates)
}
