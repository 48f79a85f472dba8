package outbox_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/retry"
)

// fastRetries makes retries quick enough for tests.
func fastRetries(cfg *outbox.RelayConfig) *outbox.RelayConfig {
	cfg.Retry.BaseDelay, cfg.Retry.MaxDelay = 20*time.Millisecond, 20*time.Millisecond
	cfg.PollInterval = 50 * time.Millisecond
	cfg.LeaderPollInterval = 50 * time.Millisecond
	return cfg
}

// TestRelayPublishesCommittedEventsOnly is the atomicity test: a rolled-back
// transaction leaves no row and publishes nothing; a committed one is
// published exactly once, through an in-memory GoChannel.
func TestRelayPublishesCommittedEventsOnly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 100}, watermill.NopLogger{})
	t.Cleanup(func() { _ = gc.Close() })
	sub, err := gc.Subscribe(ctx, "cart.events")
	require.NoError(t, err)

	relay, err := outbox.NewRelay(b.pool, gc, &outbox.RelayConfig{Outbox: b.cfg, PollInterval: time.Hour})
	require.NoError(t, err)
	runRelay(t, relay.Run)

	rolledBack := []aggregate.Envelope{envelope("c1", 1), envelope("c1", 2)}
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, b.store.Write(ctx, tx, rolledBack...))
	require.NoError(t, tx.Rollback(ctx))

	committed := []aggregate.Envelope{envelope("c2", 1), envelope("c2", 2), envelope("c3", 1)}
	b.write(t, committed...)

	got := map[string]int{}
	for len(got) < len(committed) {
		select {
		case m := <-sub:
			got[m.UUID]++
			m.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("published %d of %d events", len(got), len(committed))
		}
	}
	select { // nothing else arrives
	case m := <-sub:
		t.Fatalf("unexpected message %s %v", m.UUID, m.Metadata)
	case <-time.After(200 * time.Millisecond):
	}
	for _, e := range committed {
		require.Equal(t, 1, got[e.ID])
	}
	testinfra.Eventually(t, 5*time.Second, func() bool { return b.count(t, `true`) == 0 }, "published rows deleted (Retention 0)")
}

// TestRelayWakesOnCommit checks that a commit reaches the publisher
// through LISTEN/NOTIFY, not the (here hour-long) poll.
func TestRelayWakesOnCommit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &recorder{}
	leader := make(chan bool, 10)
	relay, err := outbox.NewRelay(b.pool, rec, &outbox.RelayConfig{Outbox: b.cfg, PollInterval: time.Hour,
		Hooks: outbox.Hooks{OnLeader: func(l bool) { leader <- l }}})
	require.NoError(t, err)
	runRelay(t, relay.Run)
	require.True(t, <-leader)
	require.True(t, relay.IsLeader())

	var worst time.Duration
	for i := range 20 {
		start := time.Now()
		b.write(t, envelope("w", int64(i+1)))
		testinfra.Eventually(t, 5*time.Second, func() bool { return rec.len() == i+1 }, "event %d published", i)
		worst = max(worst, time.Since(start))
	}
	t.Logf("slowest commit → publish: %s", worst)
	require.Less(t, worst, 3*time.Second, "woken by NOTIFY, not by the hour-long poll")
}

// TestRelayPoisonEventFailsWithoutBlockingOthers: the publisher refuses
// every event of one aggregate. Its first event ends failed after
// MaxAttempts; its later events wait behind it; all other aggregates
// flow in order. An operator retry then releases the aggregate in order.
func TestRelayPoisonEventFailsWithoutBlockingOthers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rec := &recorder{}
	rec.setReject(rejectAggregate("a3"))
	var finals atomic.Int32
	cfg := fastRetries(&outbox.RelayConfig{Outbox: b.cfg, Retry: retry.Policy{MaxAttempts: 3}, BatchSize: 25,
		Hooks: outbox.Hooks{OnAttemptFailed: func(f outbox.AttemptFailure) {
			if f.Final {
				finals.Add(1)
			}
		}}})
	relay, err := outbox.NewRelay(b.pool, rec, cfg)
	require.NoError(t, err)
	runRelay(t, relay.Run)

	b.writeChunks(t, 7, history(10, 5))
	testinfra.Eventually(t, 20*time.Second, func() bool { return rec.len() == 45 && finals.Load() == 1 }, "45 events published and one failed")

	failed, err := b.admin.Failed(ctx, 0, 0)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Equal(t, "a3", failed[0].Event.AggregateID)
	require.Equal(t, int64(1), failed[0].Event.Version)
	require.Equal(t, 3, failed[0].Attempts)
	require.Contains(t, failed[0].LastError, "poison")
	require.Equal(t, 4, b.count(t, `status = 'pending' AND aggregate_id = 'a3'`), "later events wait behind the failed one")

	st, err := relay.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, outbox.Stats{Pending: 4, Failed: 1, OldestPending: st.OldestPending}, st)
	require.Positive(t, st.OldestPending)

	// The operator fixes the cause and retries.
	rec.setReject(nil)
	n, err := b.admin.Retry(ctx, failed[0].Seq)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	testinfra.Eventually(t, 10*time.Second, func() bool { return rec.len() == 50 }, "all 50 published after retry")

	check := newOrderCheck()
	for _, m := range rec.messages() {
		check.addMessage(t, m)
	}
	check.requireComplete(t, 10, 5)
	require.Zero(t, check.duplicates)
	st, err = relay.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, outbox.Stats{}, st)
}

// TestRelaySurvivesPublisherOutage: the publisher fails everything for a
// while. Nothing is lost or reordered, nothing ends failed.
func TestRelaySurvivesPublisherOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &recorder{}
	rec.setReject(func(*message.Message) error { return errDown })
	var outageReported atomic.Bool
	cfg := fastRetries(&outbox.RelayConfig{Outbox: b.cfg, BatchSize: 100,
		Hooks: outbox.Hooks{OnError: func(error) { outageReported.Store(true) }}})
	cfg.Retry.MaxDelay = time.Second // growing waits: 20ms, 40ms, 80ms, ...
	relay, err := outbox.NewRelay(b.pool, rec, cfg)
	require.NoError(t, err)
	runRelay(t, relay.Run)

	b.writeChunks(t, 50, history(40, 10))
	testinfra.Eventually(t, 10*time.Second, outageReported.Load, "outage reported")
	require.Zero(t, rec.len())
	rec.setReject(nil)
	testinfra.Eventually(t, 20*time.Second, func() bool { return rec.len() == 400 }, "all published after the outage")

	check := newOrderCheck()
	for _, m := range rec.messages() {
		check.addMessage(t, m)
	}
	check.requireComplete(t, 40, 10)
	require.Zero(t, b.count(t, `true`))
}

// TestRelayFailover runs three relays: one leads, the others stand by.
// When the leader's database session is killed (as when its process
// dies), another takes over and the events keep flowing in order.
func TestRelayFailover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rec := &recorder{}
	var leaders atomic.Int32
	var changes atomic.Int32
	relays := make([]*outbox.Relay, 3)
	for i := range relays {
		cfg := fastRetries(&outbox.RelayConfig{Outbox: b.cfg, BatchSize: 50, Hooks: outbox.Hooks{OnLeader: func(l bool) {
			if l {
				leaders.Add(1)
				changes.Add(1)
			} else {
				leaders.Add(-1)
			}
		}}})
		var err error
		relays[i], err = outbox.NewRelay(b.pool, rec, cfg)
		require.NoError(t, err)
		runRelay(t, relays[i].Run)
	}
	testinfra.Eventually(t, 5*time.Second, func() bool { return leaders.Load() == 1 }, "one leader")

	events := history(20, 30)
	var wg sync.WaitGroup
	wg.Go(func() {
		for chunk := range slices.Chunk(events, 10) {
			b.write(t, chunk...)
			time.Sleep(2 * time.Millisecond)
		}
	})
	// Kill the leader's session twice while events are being written.
	for kill := range 2 {
		testinfra.Eventually(t, 10*time.Second, func() bool {
			return rec.len() > 150*(kill+1) && changes.Load() == int32(kill+1) && leaders.Load() == 1
		}, "progress and a leader before kill %d", kill)
		var killed int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a
			JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
			WHERE a.query = $1`, `LISTEN "`+b.schema+`.outbox"`).Scan(&killed))
		require.Equal(t, 1, killed)
	}
	wg.Wait()
	testinfra.Eventually(t, 20*time.Second, func() bool { return b.count(t, `true`) == 0 }, "all published")
	require.GreaterOrEqual(t, changes.Load(), int32(3), "leadership changed hands")
	require.LessOrEqual(t, leaders.Load(), int32(1))

	check := newOrderCheck()
	for _, m := range rec.messages() {
		check.addMessage(t, m)
	}
	check.requireComplete(t, 20, 30)
	t.Logf("%d events, %d duplicates after 2 leader kills", check.total, check.duplicates)
}

func TestRelayRetentionAndOperatorAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	rec := &recorder{}
	relay, err := outbox.NewRelay(b.pool, rec, fastRetries(&outbox.RelayConfig{Outbox: b.cfg, Retention: -1, Retry: retry.Policy{MaxAttempts: 1}}))
	require.NoError(t, err)
	runRelay(t, relay.Run)

	b.write(t, envelope("k1", 1), envelope("k1", 2))
	testinfra.Eventually(t, 5*time.Second, func() bool { return rec.len() == 2 }, "published")
	testinfra.Eventually(t, 5*time.Second, func() bool { return b.count(t, `status = 'published'`) == 2 }, "kept as published")
	pub, err := b.admin.List(ctx, outbox.StatusPublished, 0, 1)
	require.NoError(t, err)
	require.Len(t, pub, 1)
	require.False(t, pub[0].PublishedAt.IsZero())

	n, err := b.admin.DeletePublished(ctx, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = b.admin.DeletePublished(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)

	// Discard unblocks an aggregate without publishing its failed event
	// (MaxAttempts is 1 here: the first failure is final).
	rec.setReject(rejectAggregate("k2"))
	b.write(t, envelope("k2", 1))
	testinfra.Eventually(t, 5*time.Second, func() bool { return b.count(t, `status = 'failed'`) == 1 }, "k2 v1 failed")
	rec.setReject(nil)
	b.write(t, envelope("k2", 2))
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 2, rec.len(), "k2 v2 waits behind the failed v1")
	failed, err := b.admin.Failed(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	n, err = b.admin.Discard(ctx, failed[0].Seq)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	testinfra.Eventually(t, 5*time.Second, func() bool { return rec.len() == 3 }, "k2 v2 published after discard")
	require.Equal(t, "k2", rec.messages()[2].Metadata.Get(wire.HeaderAggregateID))
	require.Equal(t, "2", rec.messages()[2].Metadata.Get(wire.HeaderAggregateVersion))
}

func TestRelayRetentionDeletesOldRows(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &recorder{}
	relay, err := outbox.NewRelay(b.pool, rec, fastRetries(&outbox.RelayConfig{Outbox: b.cfg,
		Retention: 100 * time.Millisecond, CleanupInterval: 50 * time.Millisecond}))
	require.NoError(t, err)
	runRelay(t, relay.Run)
	b.write(t, envelope("r1", 1))
	testinfra.Eventually(t, 5*time.Second, func() bool { return rec.len() == 1 }, "published")
	require.Equal(t, 1, b.count(t, `status = 'published'`))
	testinfra.Eventually(t, 5*time.Second, func() bool { return b.count(t, `true`) == 0 }, "deleted after retention")
}

func TestRelayRunTwiceAndStop(t *testing.T) {
	t.Parallel()
	b := setup(t)
	relay, err := outbox.NewRelay(b.pool, &recorder{}, &outbox.RelayConfig{Outbox: b.cfg})
	require.NoError(t, err)
	stop := runRelay(t, relay.Run)
	testinfra.Eventually(t, 5*time.Second, relay.IsLeader, "leader")
	require.ErrorIs(t, relay.Run(context.Background()), outbox.ErrRelayRunning)
	start := time.Now()
	stop()
	require.Less(t, time.Since(start), 2*time.Second)
	require.False(t, relay.IsLeader())
}

// slowPublisher blocks each publish until released, to test shutdown with
// a batch in flight.
type slowPublisher struct {
	recorder
	entered chan struct{}
	gate    chan struct{}
}

func (s *slowPublisher) Publish(topic string, msgs ...*message.Message) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.gate
	return s.recorder.Publish(topic, msgs...)
}

func TestRelayFinishesInFlightBatchOnShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pub := &slowPublisher{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	var published atomic.Int32
	relay, err := outbox.NewRelay(b.pool, pub, &outbox.RelayConfig{Outbox: b.cfg,
		Hooks: outbox.Hooks{OnPublished: func(evs []aggregate.Envelope, _ time.Duration) { published.Add(int32(len(evs))) }}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- relay.Run(ctx) }()
	b.write(t, envelope("s1", 1), envelope("s1", 2))
	select {
	case <-pub.entered: // the relay is now blocked in Publish
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not publish")
	}
	cancel()
	time.Sleep(100 * time.Millisecond)
	close(pub.gate)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	require.Equal(t, int32(2), published.Load())
	require.Zero(t, b.count(t, `true`), "the in-flight batch was marked published")
}

type itemAddedV2 struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

func (itemAddedV2) EventName() string { return "cart.item_added" }
func (itemAddedV2) EventVersion() int { return 2 }

// The payload's schema version travels as a header, from PostgreSQL and
// from memory alike.
func TestRelaySendsEventVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v2 := envelope("v", 2)
	v2.Payload = itemAddedV2{SKU: "x", Quantity: 3}
	rec := &recorder{}
	relay, err := outbox.NewRelay(b.pool, rec, fastRetries(&outbox.RelayConfig{Outbox: b.cfg}))
	require.NoError(t, err)
	b.write(t, envelope("v", 1), v2)
	recs, err := b.admin.List(context.Background(), outbox.StatusPending, 0, 0)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, []int{recs[0].EventVersion, recs[1].EventVersion})
	runRelay(t, relay.Run)
	testinfra.Eventually(t, 5*time.Second, func() bool { return rec.len() == 2 }, "published")

	mem := outbox.NewMemory()
	require.NoError(t, mem.Append(context.Background(), envelope("m", 1), v2))
	memRec := &recorder{}
	mrelay, err := outbox.NewMemoryRelay(mem, memRec, nil)
	require.NoError(t, err)
	_, err = mrelay.Flush(context.Background())
	require.NoError(t, err)

	for _, msgs := range [][]*message.Message{rec.messages(), memRec.messages()} {
		require.Equal(t, "1", msgs[0].Metadata.Get(outbox.HeaderEventVersion))
		require.Equal(t, "2", msgs[1].Metadata.Get(outbox.HeaderEventVersion))
		require.JSONEq(t, `{"sku":"x","quantity":3}`, string(msgs[1].Payload))
	}
}
