package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/retry"
)

type orderPlaced struct {
	OrderID string
	Amount  int
}

func (orderPlaced) EventName() string { return "shop.order_placed" }

// pgBundle is a schema of the test's own with a migrated inbox and an
// effects table that handlers write to.
type pgBundle struct {
	pool  *pgxpool.Pool
	inbox *eventbus.Inbox
}

func setupPG(t testing.TB, cfg *eventbus.InboxConfig) *pgBundle {
	t.Helper()
	pool := testinfra.Pool(t)
	ctx := context.Background()
	if cfg == nil {
		cfg = &eventbus.InboxConfig{}
	}
	cfg.Logger = testLogger()
	inbox, err := eventbus.NewInbox(pool, cfg)
	require.NoError(t, err)
	require.NoError(t, inbox.Migrate(ctx))
	_, err = pool.Exec(ctx, `CREATE TABLE effects (event_id text NOT NULL, aggregate_id text NOT NULL, amount int NOT NULL)`)
	require.NoError(t, err)
	return &pgBundle{pool: pool, inbox: inbox}
}

func (b *pgBundle) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

// kafkaBundle is a topic of the test's own with a registry mapping every
// aggregate to it.
type kafkaBundle struct {
	topic, deadLetter string
	tr                *eventbus.KafkaTransport
	reg               *eventbus.Registry
	pub               *eventbus.Publisher
}

func setupKafka(t testing.TB, partitions int32) *kafkaBundle {
	t.Helper()
	b := &kafkaBundle{topic: testinfra.Topic(t, partitions), deadLetter: testinfra.Topic(t, 1)}
	b.tr = newKafkaTransport(t)
	reg, err := eventbus.NewRegistry(&eventbus.RegistryConfig{Topic: func(string) string { return b.topic }})
	require.NoError(t, err)
	require.NoError(t, eventbus.Register[orderPlaced](reg, eventbus.AggregateType("order")))
	b.reg = reg
	b.pub, err = eventbus.NewPublisher(b.tr.Publisher(), reg)
	require.NoError(t, err)
	return b
}

func (b *kafkaBundle) router(t testing.TB, deliveries *atomic.Int64) *eventbus.Router {
	t.Helper()
	cfg := &eventbus.RouterConfig{
		Logger:          testLogger(),
		DeadLetterTopic: b.deadLetter,
		Retry:           retry.Policy{MaxAttempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
	}
	if deliveries != nil {
		cfg.Middleware = []message.HandlerMiddleware{func(h message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) {
				deliveries.Add(1)
				return h(msg)
			}
		}}
	}
	r, err := eventbus.NewRouter(b.tr, b.reg, cfg)
	require.NoError(t, err)
	return r
}

// start runs r until stop is called (or the test ends).
func start(t *testing.T, r *eventbus.Router) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case <-r.Running():
	case err := <-done:
		t.Fatalf("router stopped: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			require.NoError(t, r.Close())
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

var seq atomic.Int64

func order(aggID string, amount int) aggregate.Envelope {
	n := seq.Add(1)
	return aggregate.Envelope{
		ID:            fmt.Sprintf("ev-%d-%s", n, testinfra.Suffix()),
		Name:          orderPlaced{}.EventName(),
		AggregateType: "order",
		AggregateID:   aggID,
		Version:       n,
		OccurredAt:    time.Now(),
		Payload:       orderPlaced{OrderID: aggID, Amount: amount},
	}
}

// applyOrder is the handler under test: one effect row per event.
func applyOrder(calls *atomic.Int64) eventbus.TxHandlerFunc[orderPlaced] {
	return func(ctx context.Context, tx pgx.Tx, e orderPlaced, md eventbus.Metadata) error {
		calls.Add(1)
		_, err := tx.Exec(ctx, `INSERT INTO effects (event_id, aggregate_id, amount) VALUES ($1, $2, $3)`, md.EventID, md.AggregateID, e.Amount)
		return err
	}
}

// The same event delivered three times is applied once.
func TestKafkaInboxSameEventThreeTimesAppliedOnce(t *testing.T) {
	t.Parallel()
	pg := setupPG(t, nil)
	k := setupKafka(t, 1)
	var deliveries, calls atomic.Int64
	r := k.router(t, &deliveries)
	require.NoError(t, eventbus.HandleTx(r, "billing", pg.inbox, applyOrder(&calls)))
	start(t, r)

	dup := order("o-1", 10)
	marker := order("o-1", 1)
	require.NoError(t, k.pub.Publish(context.Background(), dup, dup, dup, marker))
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, marker.ID) == 1
	}, "marker event not applied")

	require.Equal(t, int64(4), deliveries.Load(), "Kafka delivered every copy")
	require.Equal(t, int64(2), calls.Load(), "the handler ran once per distinct event")
	require.Equal(t, 1, pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, dup.ID))
	ok, err := pg.inbox.Processed(context.Background(), "billing", dup.ID)
	require.NoError(t, err)
	require.True(t, ok)
}

// A consumer stopped and started again continues at its committed offset:
// every event applied exactly once across both runs.
func TestKafkaConsumerRestartResumesFromCommittedOffset(t *testing.T) {
	t.Parallel()
	pg := setupPG(t, nil)
	k := setupKafka(t, 2)
	ctx := context.Background()
	const n = 20
	publish := func(from int) {
		var envs []aggregate.Envelope
		for i := from; i < from+n; i++ {
			envs = append(envs, order(fmt.Sprintf("o-%d", i%4), i))
		}
		require.NoError(t, k.pub.Publish(ctx, envs...))
	}
	var calls atomic.Int64

	var first atomic.Int64
	r1 := k.router(t, &first)
	require.NoError(t, eventbus.HandleTx(r1, "ledger", pg.inbox, applyOrder(&calls)))
	stop1 := start(t, r1)
	publish(0)
	testinfra.Eventually(t, 30*time.Second, func() bool { return pg.count(t, `SELECT count(*) FROM effects`) == n }, "first run incomplete")
	stop1()

	publish(n) // while no consumer runs
	var second atomic.Int64
	r2 := k.router(t, &second)
	require.NoError(t, eventbus.HandleTx(r2, "ledger", pg.inbox, applyOrder(&calls)))
	start(t, r2)
	testinfra.Eventually(t, 30*time.Second, func() bool { return pg.count(t, `SELECT count(*) FROM effects`) == 2*n }, "second run incomplete")
	time.Sleep(300 * time.Millisecond) // anything redelivered would show up now

	require.Equal(t, 2*n, pg.count(t, `SELECT count(*) FROM effects`), "nothing applied twice")
	require.Equal(t, 2*n, pg.count(t, `SELECT count(DISTINCT event_id) FROM effects`), "nothing lost")
	require.Equal(t, int64(2*n), calls.Load(), "no handler re-ran")
	t.Logf("deliveries: first run %d, second run %d", first.Load(), second.Load())
	require.Equal(t, int64(n), first.Load())
	require.Equal(t, int64(n), second.Load(), "the second run starts at the committed offset, not at the beginning")
}

// A poison event rolls back its effects and inbox row, goes to the
// dead-letter topic after the bounded retries, and the consumer goes on.
func TestKafkaInboxPoisonRollsBackAndStreamGoesOn(t *testing.T) {
	t.Parallel()
	pg := setupPG(t, nil)
	k := setupKafka(t, 1)
	var calls atomic.Int64
	r := k.router(t, nil)
	apply := applyOrder(&calls)
	require.NoError(t, eventbus.HandleTx(r, "strict", pg.inbox, func(ctx context.Context, tx pgx.Tx, e orderPlaced, md eventbus.Metadata) error {
		if err := apply(ctx, tx, e, md); err != nil {
			return err
		}
		if e.Amount < 0 {
			return errors.New("negative amount")
		}
		return nil
	}))
	dl := subscribeAll(t, k.tr, k.deadLetter)
	start(t, r)

	poison, next := order("o-1", -5), order("o-1", 5)
	require.NoError(t, k.pub.Publish(context.Background(), poison, next))
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, next.ID) == 1 && len(dl.all()) == 1
	}, "next event not applied or poison not dead-lettered")

	require.Equal(t, int64(4), calls.Load(), "3 attempts for the poison, 1 for the next")
	require.Equal(t, 0, pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, poison.ID), "the poison's effects rolled back")
	ok, err := pg.inbox.Processed(context.Background(), "strict", poison.ID)
	require.NoError(t, err)
	require.False(t, ok, "a dead-lettered event is not marked processed, so it can be replayed")
	m := dl.all()[0]
	require.Equal(t, poison.ID, m.Metadata.Get(eventbus.HeaderEventID))
	require.Equal(t, k.topic, m.Metadata.Get(eventbus.HeaderDeadLetterTopic))
	require.Contains(t, m.Metadata.Get(eventbus.HeaderDeadLetterReason), "negative amount")
}

type collected struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (c *collected) all() []*message.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*message.Message(nil), c.msgs...)
}

// subscribeAll reads every message of topic into a collection until the
// test ends.
func subscribeAll(t *testing.T, tr eventbus.Transport, topic string) *collected {
	t.Helper()
	sub, err := tr.Subscriber("reader-" + topic)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	c := &collected{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
			m.Ack()
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = sub.Close()
		<-done
	})
	return c
}

func TestInboxProcessSkipsDuplicates(t *testing.T) {
	t.Parallel()
	pg := setupPG(t, nil)
	ctx := context.Background()
	md := eventbus.Metadata{EventID: "ev-1", EventName: "x"}
	var runs int
	fn := func(ctx context.Context, tx pgx.Tx) error {
		runs++
		_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ('ev-1', 'a', 1)`)
		return err
	}
	failing := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ('ev-1', 'a', 1)`)
		require.NoError(t, err)
		return errors.New("boom")
	}

	applied, err := pg.inbox.Process(ctx, "h", md, failing)
	require.EqualError(t, err, "boom")
	require.False(t, applied)
	require.Equal(t, 0, pg.count(t, `SELECT count(*) FROM effects`), "a failed attempt leaves nothing")

	for range 3 {
		_, err := pg.inbox.Process(ctx, "h", md, fn)
		require.NoError(t, err)
	}
	require.Equal(t, 1, runs)
	require.Equal(t, 1, pg.count(t, `SELECT count(*) FROM effects`))

	// Another handler is another consumer: it applies the event too.
	applied, err = pg.inbox.Process(ctx, "other", md, fn)
	require.NoError(t, err)
	require.True(t, applied)

	_, err = pg.inbox.Process(ctx, "h", eventbus.Metadata{}, fn)
	require.ErrorIs(t, err, eventbus.ErrPermanent)

	// A database that cannot be reached is an outage, not a bad event.
	down := testinfra.Pool(t)
	down.Close()
	unreachable, err := eventbus.NewInbox(down, nil)
	require.NoError(t, err)
	_, err = unreachable.Process(ctx, "h", md, fn)
	require.ErrorIs(t, err, eventbus.ErrUnavailable)
}

// Concurrent deliveries of one event (a rebalance hands a partition over
// mid-flight) apply it once: the second insert waits for the first
// transaction and then finds the row.
func TestInboxConcurrentDeliveriesApplyOnce(t *testing.T) {
	t.Parallel()
	pg := setupPG(t, nil)
	ctx := context.Background()
	md := eventbus.Metadata{EventID: "ev-c", EventName: "x"}
	var runs atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := pg.inbox.Process(ctx, "h", md, func(ctx context.Context, tx pgx.Tx) error {
				runs.Add(1)
				time.Sleep(20 * time.Millisecond)
				_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ('ev-c', 'a', 1)`)
				return err
			})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.Equal(t, int64(1), runs.Load())
	require.Equal(t, 1, pg.count(t, `SELECT count(*) FROM effects`))
}

func TestInboxMigrateIsIdempotentAndConcurrencySafe(t *testing.T) {
	t.Parallel()
	pool, schema := testinfra.Schema(t)
	ctx := context.Background()
	inbox, err := eventbus.NewInbox(pool, &eventbus.InboxConfig{Table: schema + ".my_inbox"})
	require.NoError(t, err)
	require.Equal(t, `"`+schema+`"."my_inbox"`, inbox.Table())
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() { errs <- inbox.Migrate(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, inbox.Migrate(ctx))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'my_inbox'`, schema).Scan(&n))
	require.Equal(t, 2, n, "primary key and processed_at index")
}

func TestInboxCleanupDeletesExpiredRows(t *testing.T) {
	t.Parallel()
	pg := setupPG(t, &eventbus.InboxConfig{Retention: time.Hour, CleanupBatch: 3})
	ctx := context.Background()
	noop := func(context.Context, pgx.Tx) error { return nil }
	for i := range 10 {
		_, err := pg.inbox.Process(ctx, "h", eventbus.Metadata{EventID: fmt.Sprint("ev-", i)}, noop)
		require.NoError(t, err)
	}
	_, err := pg.pool.Exec(ctx, `UPDATE `+pg.inbox.Table()+` SET processed_at = now() - interval '2 hours' WHERE event_id <> 'ev-9'`)
	require.NoError(t, err)
	n, err := pg.inbox.Cleanup(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(9), n, "three batches of three")
	require.Equal(t, 1, pg.count(t, `SELECT count(*) FROM `+pg.inbox.Table()))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, pg.inbox.RunCleanup(cctx))
}
