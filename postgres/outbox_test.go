package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/internal/uuidv7"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/retry"
)

// The PostgreSQL outbox passes the suite every outbox.Source passes.
func TestOutboxSuite(t *testing.T) {
	t.Parallel()
	outboxtest.Run(t, func(t *testing.T) *outboxtest.Harness {
		pool, _ := pgtest.Schema(t)
		require.NoError(t, postgres.Migrate(context.Background(), pool, nil))
		reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test"})
		// One shard: the suite counts leaders, and one relay leads a
		// single-shard outbox. Sharded leadership has tests of its own
		// (shard_test.go).
		cfg := &postgres.OutboxConfig{LeaderPollInterval: 50 * time.Millisecond, Shards: 1}
		open := func(t *testing.T) outbox.Source {
			ob, err := postgres.NewOutbox(pool, reg, cfg)
			require.NoError(t, err)
			return ob
		}
		ob := open(t).(*postgres.Outbox)
		return &outboxtest.Harness{
			Source:   ob,
			Registry: reg,
			Write:    ob.Write,
			Retry: func(ctx context.Context) (int, error) {
				n, err := ob.Retry(ctx)
				return int(n), err
			},
			Replica:   open, // as another process: its own Outbox, its own leader connection
			Scheduler: ob,
		}
	})
}

// ------------------------------------------------------------ helpers

type cartItemAdded struct {
	SKU string `json:"sku"`
	N   int    `json:"n"`
}

func (cartItemAdded) EventName() string { return "cart.item_added" }

type cartItemRemoved struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

func (cartItemRemoved) EventName() string { return "cart.item_removed" }
func (cartItemRemoved) EventVersion() int { return 2 }

// cartEvent returns version v of cart agg.
func cartEvent(agg string, v int64) aggregate.Envelope {
	return aggregate.Envelope{
		ID:            uuidv7.New().String(),
		Name:          cartItemAdded{}.EventName(),
		AggregateType: "cart",
		AggregateID:   agg,
		Version:       v,
		OccurredAt:    time.Now(),
		Payload:       cartItemAdded{SKU: agg, N: int(v)},
	}
}

// cartHistory returns aggregates × versions events of carts "a0", "a1",
// …, interleaved as concurrent writers produce them.
func cartHistory(aggregates, versions int) []aggregate.Envelope {
	out := make([]aggregate.Envelope, 0, aggregates*versions)
	for v := 1; v <= versions; v++ {
		for a := range aggregates {
			out = append(out, cartEvent("a"+strconv.Itoa(a), int64(v)))
		}
	}
	return out
}

// newCartRegistry returns a registry with the cart events, whose topic
// rule is topic (nil: the default, "cart.events").
func newCartRegistry(t testing.TB, topic eventbus.TopicFunc) *eventbus.Registry {
	t.Helper()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: topic})
	require.NoError(t, eventbus.Register[cartItemAdded](reg, eventbus.AggregateType("cart")))
	require.NoError(t, eventbus.Register[cartItemRemoved](reg, eventbus.AggregateType("cart")))
	return reg
}

// outboxBundle is a schema of the test's own with the dddkit tables and
// an Outbox on them.
type outboxBundle struct {
	pool   *pgxpool.Pool
	schema string
	reg    *eventbus.Registry
	ob     *postgres.Outbox
}

func newOutboxBundle(t testing.TB, cfg *postgres.OutboxConfig) *outboxBundle {
	t.Helper()
	pool, schema := pgtest.Schema(t)
	require.NoError(t, postgres.Migrate(context.Background(), pool, nil))
	b := &outboxBundle{pool: pool, schema: schema, reg: newCartRegistry(t, nil)}
	b.ob = b.open(t, cfg)
	return b
}

// useTopic sends every event of the bundle to topic: its registry and
// Outbox are replaced by ones with that topic rule.
func (b *outboxBundle) useTopic(t testing.TB, topic string) {
	t.Helper()
	b.reg = newCartRegistry(t, func(string) string { return topic })
	b.ob = b.open(t, nil)
}

// open returns another Outbox on the bundle's table, as another process
// opens it.
func (b *outboxBundle) open(t testing.TB, cfg *postgres.OutboxConfig) *postgres.Outbox {
	t.Helper()
	if cfg == nil {
		cfg = &postgres.OutboxConfig{}
	}
	if cfg.LeaderPollInterval == 0 {
		cfg.LeaderPollInterval = 50 * time.Millisecond
	}
	ob, err := postgres.NewOutbox(b.pool, b.reg, cfg)
	require.NoError(t, err)
	return ob
}

func (b *outboxBundle) write(t testing.TB, events ...aggregate.Envelope) {
	t.Helper()
	require.NoError(t, b.ob.Write(context.Background(), events...))
}

// count counts the outbox rows matching where.
func (b *outboxBundle) count(t testing.TB, where string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM dddkit_outbox WHERE `+where, args...).Scan(&n))
	return n
}

// startRelay runs r.Run in the background; see outboxtest.Start.
func startRelay(t testing.TB, r *outbox.Relay) (stop func()) {
	t.Helper()
	return outboxtest.Start(t, r, 30*time.Second)
}

// flushRelay publishes what is due through r and returns how many.
func flushRelay(t testing.TB, r *outbox.Relay) int {
	t.Helper()
	n, err := r.Flush(context.Background())
	require.NoError(t, err)
	return n
}

// ------------------------------------------------------------- tests

// The atomicity guarantee: events written in a unit of work are
// published if and only if it commits. A relay does not see them before
// the commit; a rolled-back unit leaves nothing.
func TestOutboxPublishesCommittedEventsOnly(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	ctx := context.Background()
	uow, err := postgres.NewUnitOfWork(b.pool)
	require.NoError(t, err)
	rec := &outboxtest.Recorder{}
	relay, err := outbox.NewRelay(b.ob, rec, b.reg, nil)
	require.NoError(t, err)

	errChanged := errors.New("changed my mind")
	rolledBack := []aggregate.Envelope{cartEvent("c1", 1), cartEvent("c1", 2)}
	err = uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, b.ob.Write(ctx, rolledBack...))
		return errChanged
	})
	require.ErrorIs(t, err, errChanged)

	committed := []aggregate.Envelope{cartEvent("c2", 1), cartEvent("c2", 2), cartEvent("c3", 1)}
	require.NoError(t, uow.Do(ctx, func(ctx context.Context) error {
		if err := b.ob.Write(ctx, committed[:2]...); err != nil {
			return err
		}
		if err := b.ob.Write(ctx, committed[2]); err != nil { // a second write joins the same unit
			return err
		}
		require.Zero(t, flushRelay(t, relay), "a relay does not see the unit's events before it commits")
		return nil
	}))

	require.Equal(t, 3, flushRelay(t, relay))
	got := map[string]int{}
	for _, m := range rec.Messages() {
		got[m.UUID]++
	}
	require.Len(t, got, 3)
	for _, e := range committed {
		require.Equal(t, 1, got[e.ID], "committed event %s published once", e.ID)
	}
	require.Zero(t, b.count(t, `true`), "published rows are deleted (Retention 0) and the rolled-back ones never existed")
	require.Zero(t, flushRelay(t, relay))
}

// Write stores every field of the event, the payload as the registry
// encodes it, and the payload's schema version.
func TestOutboxWriteStoresEverything(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	ctx := context.Background()

	e1 := cartEvent("c1", 1)
	e1.Metadata = aggregate.Metadata{CorrelationID: "corr", CausationID: "cmd-1", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Values: map[string]string{"tenant": "acme"}}
	e2 := cartEvent("c1", 2)
	e2.Name, e2.Payload = cartItemRemoved{}.EventName(), cartItemRemoved{SKU: "x", Quantity: 3}
	b.write(t, e1, e2)

	recs, err := b.ob.List(ctx, outbox.StatusPending, 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	r := recs[0]
	require.Equal(t, e1.ID, r.Event.ID)
	require.Equal(t, "cart.item_added", r.Event.Name)
	require.Equal(t, "cart", r.Event.AggregateType)
	require.Equal(t, "c1", r.Event.AggregateID)
	require.Equal(t, int64(1), r.Event.Version)
	require.WithinDuration(t, e1.OccurredAt, r.Event.OccurredAt, time.Microsecond)
	require.Equal(t, e1.Metadata, r.Event.Metadata)
	require.Nil(t, r.Event.Payload)
	require.JSONEq(t, `{"sku":"c1","n":1}`, string(r.RawPayload))
	require.Equal(t, 1, r.EventVersion)
	require.Equal(t, outbox.StatusPending, r.Status)
	require.Zero(t, r.Attempts)
	require.Empty(t, r.LastError)
	require.False(t, r.CreatedAt.IsZero())
	require.True(t, r.NextAttemptAt.IsZero())
	require.True(t, r.PublishedAt.IsZero())

	require.Less(t, recs[0].Seq, recs[1].Seq)
	require.True(t, recs[1].Event.Metadata.IsZero())
	require.Equal(t, 2, recs[1].EventVersion, "the schema version of cart.item_removed")
	require.JSONEq(t, `{"sku":"x","quantity":3}`, string(recs[1].RawPayload))
}

// countingDB counts the statements run through Exec.
type countingDB struct {
	postgres.DB
	execs atomic.Int32
}

func (c *countingDB) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c.execs.Add(1)
	return c.DB.Exec(ctx, sql, args...)
}

// A write of any number of events is one statement: a multi-row VALUES
// up to 32 events, unnest arrays beyond.
func TestOutboxWriteIsOneStatement(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	ctx := context.Background()
	db := &countingDB{DB: b.pool}
	ob, err := postgres.NewOutbox(db, b.reg, nil)
	require.NoError(t, err)

	var all []aggregate.Envelope
	for i, n := range []int{1, 32, 33, 140} {
		events := make([]aggregate.Envelope, n)
		for j := range events {
			events[j] = cartEvent("w"+strconv.Itoa(i), int64(j+1))
		}
		events[n/2].Metadata = aggregate.Metadata{CorrelationID: "c" + strconv.Itoa(i)}
		events[n-1].OccurredAt = time.Time{}
		db.execs.Store(0)
		require.NoError(t, ob.Write(ctx, events...))
		require.Equal(t, int32(1), db.execs.Load(), "a write of %d events", n)
		all = append(all, events...)
	}
	require.Equal(t, len(all), b.count(t, `status = 'pending'`))

	recs, err := b.ob.List(ctx, outbox.StatusPending, 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, len(all))
	for i, r := range recs {
		e := all[i]
		require.Equal(t, e.ID, r.Event.ID, "sequence order is write order")
		require.Equal(t, e.Metadata, r.Event.Metadata)
		var p cartItemAdded
		require.NoError(t, json.Unmarshal(r.RawPayload, &p))
		require.Equal(t, e.Payload, p)
		if e.OccurredAt.IsZero() {
			require.WithinDuration(t, time.Now(), r.Event.OccurredAt, time.Minute, "a zero OccurredAt is stored as now")
		} else {
			require.WithinDuration(t, e.OccurredAt, r.Event.OccurredAt, time.Microsecond)
		}
	}
}

// The operator's API: published rows kept by Retention are listed and
// deleted; failed events are listed with their attempts and last error,
// retried (published next, in order) or discarded (their aggregate's
// later events flow).
func TestOutboxOperatorAPI(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, &postgres.OutboxConfig{Retention: time.Hour})
	ctx := context.Background()
	rec := &outboxtest.Recorder{}
	relay, err := outbox.NewRelay(b.ob, rec, b.reg, &outbox.RelayConfig{Retry: retry.Policy{MaxAttempts: 2, BaseDelay: time.Nanosecond}})
	require.NoError(t, err)

	// Published rows stay for the retention.
	b.write(t, cartEvent("k1", 1), cartEvent("k1", 2))
	require.Equal(t, 2, flushRelay(t, relay))
	require.Equal(t, 2, b.count(t, `status = 'published'`))
	pub, err := b.ob.List(ctx, outbox.StatusPublished, 0, 1)
	require.NoError(t, err)
	require.Len(t, pub, 1)
	require.Equal(t, outbox.StatusPublished, pub[0].Status)
	require.False(t, pub[0].PublishedAt.IsZero())
	next, err := b.ob.List(ctx, outbox.StatusPublished, pub[0].Seq, 0)
	require.NoError(t, err)
	require.Len(t, next, 1, "paging by sequence")
	require.Equal(t, int64(2), next[0].Event.Version)
	n, err := b.ob.DeletePublished(ctx, time.Hour)
	require.NoError(t, err)
	require.Zero(t, n, "younger than an hour")
	n, err = b.ob.DeletePublished(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, int64(2), n)

	// Two events fail for good; k2 v2 waits behind k2 v1.
	rec.Refuse(func(_ string, m *message.Message) error {
		if id := m.Metadata.Get(eventbus.HeaderAggregateID); id == "k2" || id == "k3" {
			return errors.New("poison " + id)
		}
		return nil
	})
	b.write(t, cartEvent("k2", 1), cartEvent("k2", 2), cartEvent("k3", 1))
	require.Zero(t, flushRelay(t, relay))
	require.Zero(t, flushRelay(t, relay))
	failed, err := b.ob.List(ctx, outbox.StatusFailed, 0, 0)
	require.NoError(t, err)
	require.Len(t, failed, 2)
	require.Equal(t, []string{"k2", "k3"}, []string{failed[0].Event.AggregateID, failed[1].Event.AggregateID})
	for _, f := range failed {
		require.Equal(t, int64(1), f.Event.Version)
		require.Equal(t, 2, f.Attempts)
		require.Equal(t, "poison "+f.Event.AggregateID, f.LastError)
		require.True(t, f.NextAttemptAt.IsZero())
	}
	st, err := b.ob.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, outbox.Stats{Pending: 1, Failed: 2, OldestPending: st.OldestPending}, st)
	rec.Refuse(nil)
	require.Zero(t, flushRelay(t, relay), "k2 v2 waits behind the failed v1")

	// Discard gives up on k2 v1 without publishing it and unblocks k2;
	// the row stays, with who discarded it and why.
	n, err = b.ob.Discard(ctx, "ops", "bad data")
	require.NoError(t, err)
	require.Zero(t, n, "Discard without sequence numbers discards nothing")
	_, err = b.ob.Discard(ctx, "", " ", failed[0].Seq)
	require.ErrorContains(t, err, "who")
	require.ErrorContains(t, err, "why")
	pending, err := b.ob.List(ctx, outbox.StatusPending, 0, 0)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	n, err = b.ob.Discard(ctx, "ops", "bad data", failed[0].Seq, pending[0].Seq)
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "only failed rows are discarded")
	require.Equal(t, 1, flushRelay(t, relay))
	discarded, err := b.ob.Get(ctx, failed[0].Seq)
	require.NoError(t, err)
	require.Equal(t, outbox.StatusDiscarded, discarded.Status)
	require.Equal(t, "ops", discarded.DiscardedBy)
	require.Equal(t, "bad data", discarded.DiscardReason)
	require.False(t, discarded.DiscardedAt.IsZero())
	require.Equal(t, "poison k2", discarded.LastError, "the last error stays")
	_, err = b.ob.Get(ctx, 1<<40)
	require.ErrorIs(t, err, postgres.ErrRecordNotFound)

	// Retry puts k3 v1 back to pending with fresh attempts.
	n, err = b.ob.Retry(ctx, failed[1].Seq)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	n, err = b.ob.Retry(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing failed any more")
	require.Equal(t, 1, flushRelay(t, relay))

	var sent []string
	for _, m := range rec.Messages() {
		sent = append(sent, m.Metadata.Get(eventbus.HeaderAggregateID)+" v"+m.Metadata.Get(eventbus.HeaderAggregateVersion))
	}
	require.Equal(t, []string{"k1 v1", "k1 v2", "k2 v2", "k3 v1"}, sent)
	st, err = b.ob.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, outbox.Stats{}, st)
}

// Retry wakes a running relay (an hour-long poll here) through the
// outbox's notification channel.
func TestOutboxRetryWakesTheRelay(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	ctx := context.Background()
	rec := &outboxtest.Recorder{}
	rec.Refuse(func(string, *message.Message) error { return errors.New("down") })
	relay, err := outbox.NewRelay(b.ob, rec, b.reg, &outbox.RelayConfig{PollInterval: time.Hour, Retry: retry.Policy{MaxAttempts: 1}})
	require.NoError(t, err)
	startRelay(t, relay)
	b.write(t, cartEvent("r", 1))
	testinfra.Eventually(t, 30*time.Second, func() bool { return b.count(t, `status = 'failed'`) == 1 }, "failed at the first attempt")
	rec.Refuse(nil)
	n, err := b.ob.Retry(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	testinfra.Eventually(t, 30*time.Second, func() bool { return rec.Len() == 1 }, "published after the retry, without a poll")
}

// A relay with Retention deletes published rows once they are older
// than it.
func TestOutboxRetentionDeletesOldRows(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, &postgres.OutboxConfig{Retention: time.Hour})
	rec := &outboxtest.Recorder{}
	b.write(t, cartEvent("r1", 1))

	// Published through an Outbox that keeps rows for an hour: the row
	// stays, as published.
	keeper, err := outbox.NewRelay(b.ob, rec, b.reg, nil)
	require.NoError(t, err)
	require.Equal(t, 1, flushRelay(t, keeper))
	require.Equal(t, 1, b.count(t, `status = 'published'`))

	// A relay whose Outbox keeps rows for 100ms deletes it.
	short := b.open(t, &postgres.OutboxConfig{Retention: 100 * time.Millisecond, CleanupInterval: 50 * time.Millisecond})
	cleaner, err := outbox.NewRelay(short, rec, b.reg, nil)
	require.NoError(t, err)
	startRelay(t, cleaner)
	testinfra.Eventually(t, 30*time.Second, func() bool { return b.count(t, `true`) == 0 }, "deleted after the retention")
	require.Equal(t, 1, rec.Len())
}

// A relay on a database that was never migrated stops at once with an
// error that says so: retrying cannot fix it.
func TestOutboxNotMigrated(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	reg := newCartRegistry(t, nil)
	ob, err := postgres.NewOutbox(pool, reg, nil)
	require.NoError(t, err)

	_, err = ob.Stats(ctx)
	require.ErrorIs(t, err, postgres.ErrNotMigrated)
	require.Error(t, ob.Write(ctx, cartEvent("c", 1)))

	relay, err := outbox.NewRelay(ob, &outboxtest.Recorder{}, reg, nil)
	require.NoError(t, err)
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second) // Run would retry a retryable error until then
	defer cancel()
	err = relay.Run(runCtx)
	require.ErrorIs(t, err, outbox.ErrUnusable)
	require.ErrorIs(t, err, postgres.ErrNotMigrated)
	_, err = relay.Flush(ctx)
	require.ErrorIs(t, err, postgres.ErrNotMigrated)
}

// The relay's leader holds a connection of its own: on a DB that cannot
// lend one (a transaction here) Run stops at once with ErrUnusable.
func TestOutboxRelayNeedsAPool(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	ctx := context.Background()
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	ob, err := postgres.NewOutbox(tx, b.reg, nil)
	require.NoError(t, err)
	relay, err := outbox.NewRelay(ob, &outboxtest.Recorder{}, b.reg, nil)
	require.NoError(t, err)
	runCtx, cancel := context.WithTimeout(ctx, 30*time.Second) // Run would retry a retryable error until then
	defer cancel()
	err = relay.Run(runCtx)
	require.ErrorIs(t, err, outbox.ErrUnusable)
	require.ErrorContains(t, err, "needs a *pgxpool.Pool")
}

// Three relays, one per replica, share the 16 shards (at most 6 each):
// when a leader's lock session is killed (as when its process dies), the
// others take its shards over and the events keep flowing in order.
func TestOutboxFailoverWhenTheLeaderSessionDies(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	ctx := context.Background()
	rec := &outboxtest.Recorder{}
	var sessions atomic.Int32
	for range 3 {
		relay, err := outbox.NewRelay(b.open(t, nil), rec, b.reg, &outbox.RelayConfig{
			BatchSize: 50, PollInterval: 50 * time.Millisecond,
			Retry: retry.Policy{BaseDelay: 20 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
			Hooks: outbox.Hooks{OnLeader: func(l bool) {
				if l {
					sessions.Add(1)
				}
			}},
		})
		require.NoError(t, err)
		startRelay(t, relay)
	}
	leaders := func() []postgres.Leader {
		ls, err := b.ob.Leaders(ctx)
		require.NoError(t, err)
		return ls
	}
	// shared reports whether every shard is led, by three relays, none
	// above its share.
	shared := func() bool {
		ls, total := leaders(), 0
		for _, l := range ls {
			if len(l.Shards) == 0 || len(l.Shards) > 6 || l.ShardCount != 16 {
				return false
			}
			total += len(l.Shards)
		}
		return len(ls) == 3 && total == 16
	}
	testinfra.Eventually(t, 30*time.Second, shared, "three relays share the shards: %+v", leaders())

	events := cartHistory(20, 30)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; i < len(events); i += 10 {
			if err := b.ob.Write(ctx, events[i:i+10]...); err != nil {
				t.Errorf("write: %v", err)
				return
			}
			time.Sleep(2 * time.Millisecond) // spread the writes over the kills
		}
	})
	for kill := range 2 {
		// Every session that holds locks has started leading (a relay
		// joins, takes its shards, then leads): a victim killed between
		// the two would never report leading, and the count below would
		// miss it.
		testinfra.Eventually(t, 30*time.Second, func() bool {
			return rec.Len() > 150*(kill+1) && shared() && sessions.Load() >= int32(3+kill)
		}, "progress, shared shards and %d sessions leading before kill %d", 3+kill, kill)
		victim := leaders()[kill]
		var killed bool
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, victim.PID).Scan(&killed))
		require.True(t, killed)
		t.Logf("killed the lock session of the relay leading shards %v", victim.Shards)
	}
	wg.Wait()
	testinfra.Eventually(t, 30*time.Second, func() bool { return b.count(t, `true`) == 0 }, "all published")
	testinfra.Eventually(t, 30*time.Second, shared, "the three relays share the shards again: %+v", leaders())
	// A relay takes its shards before it reports leading (see the kills
	// above): wait for the report.
	testinfra.Eventually(t, 30*time.Second, func() bool { return sessions.Load() >= 5 }, "the relays whose sessions were killed led again")

	check := outboxtest.NewOrderCheck()
	for _, m := range rec.Messages() {
		require.NoError(t, check.AddMessage(m.Message))
	}
	require.NoError(t, check.Complete(20, 30))
	t.Logf("%d events, %d duplicates after 2 leader kills", check.Total(), check.Duplicates())
}

// An outbox in a schema of its own, with a table name of its own: writes
// go there whatever the search_path, and the relay listens on that
// table's channel.
func TestOutboxInNamedSchema(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	ctx := context.Background()
	tables := postgres.Tables{Schema: schema + "_ob", Outbox: "events_out"}
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{tables.Schema}.Sanitize()+` CASCADE`)
		require.NoError(t, err)
	})
	require.NoError(t, postgres.Migrate(ctx, pool, &tables))
	reg := newCartRegistry(t, nil)
	ob, err := postgres.NewOutbox(pool, reg, &postgres.OutboxConfig{Tables: tables})
	require.NoError(t, err)
	require.Equal(t, tables, ob.Tables())

	require.NoError(t, ob.Write(ctx, cartEvent("c1", 1)))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{tables.Schema, "events_out"}.Sanitize()).Scan(&n))
	require.Equal(t, 1, n)

	rec := &outboxtest.Recorder{}
	relay, err := outbox.NewRelay(ob, rec, reg, &outbox.RelayConfig{PollInterval: time.Hour})
	require.NoError(t, err)
	startRelay(t, relay)
	testinfra.Eventually(t, 30*time.Second, func() bool { return rec.Len() == 1 }, "published when the relay starts leading")
	require.NoError(t, ob.Write(ctx, cartEvent("c1", 2)))
	testinfra.Eventually(t, 30*time.Second, func() bool { return rec.Len() == 2 }, "published without a poll: woken on the table's channel")
	testinfra.Eventually(t, 30*time.Second, func() bool {
		st, err := ob.Stats(ctx)
		require.NoError(t, err)
		return st == outbox.Stats{}
	}, "nothing pending")
}

// The relay's queries rely on the outbox's partial indexes: pending rows
// by sequence (and shard order), the rows that block their aggregate, published rows by
// age (for retention), deadlines by due time and by key.
func TestOutboxTableHasItsIndexes(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	indexes := column[string](t, b.pool,
		`SELECT indexname FROM pg_indexes WHERE tablename = 'dddkit_outbox' AND schemaname = $1 ORDER BY 1`, b.schema)
	require.Equal(t, []string{"dddkit_outbox_blocked_idx", "dddkit_outbox_due_idx", "dddkit_outbox_event_id_key", "dddkit_outbox_pending_shard_idx",
		"dddkit_outbox_pkey", "dddkit_outbox_published_idx", "dddkit_outbox_schedule_key_idx"}, indexes)
}

func TestOutboxConfigValidate(t *testing.T) {
	t.Parallel()
	err := (&postgres.OutboxConfig{Retention: -1, CleanupInterval: -1, LeaderPollInterval: -1, Shards: -1, LeaderTimeout: -1,
		Tables: postgres.Tables{Outbox: string(make([]byte, 49))}}).Validate()
	require.ErrorContains(t, err, "OutboxConfig.Shards")
	require.ErrorContains(t, err, "OutboxConfig.LeaderTimeout")
	require.ErrorContains(t, err, "OutboxConfig.Retention")
	require.ErrorContains(t, err, "OutboxConfig.CleanupInterval")
	require.ErrorContains(t, err, "OutboxConfig.LeaderPollInterval")
	require.ErrorContains(t, err, "Tables.Outbox")
	require.NoError(t, (*postgres.OutboxConfig)(nil).Validate())
	require.ErrorContains(t, (&postgres.OutboxConfig{Shards: postgres.MaxShards + 1}).Validate(), "above the limit")
	require.NoError(t, (&postgres.OutboxConfig{Shards: postgres.MaxShards}).Validate())

	_, err = postgres.NewOutbox(nil, nil, &postgres.OutboxConfig{Retention: -1})
	require.ErrorContains(t, err, "nil DB")
	require.ErrorContains(t, err, "nil Registry")
	require.ErrorContains(t, err, "OutboxConfig.Retention")
}
