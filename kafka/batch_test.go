package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/retry"
)

// batchRouter returns a router for the batch tests: quick retries, the
// bundle's dead-letter topic, batches of up to 500 events gathered for up
// to maxWait.
func (b *kafkaBundle) batchRouter(t *testing.T, maxWait time.Duration) *eventbus.Router {
	t.Helper()
	r, err := eventbus.NewRouter(b.client, b.reg, &eventbus.RouterConfig{
		Logger:          testLogger(),
		DeadLetterTopic: b.deadLetter,
		Retry:           retry.Policy{MaxAttempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
		MaxWait:         maxWait,
	})
	require.NoError(t, err)
	return r
}

// encode turns envs into messages for a raw publish.
func (b *kafkaBundle) encode(t *testing.T, envs ...aggregate.Envelope) []*message.Message {
	t.Helper()
	msgs := make([]*message.Message, len(envs))
	for k, env := range envs {
		m, err := b.reg.Encode(env)
		require.NoError(t, err)
		msgs[k] = m
	}
	return msgs
}

func TestRouterBatchConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := eventbus.NewRouter(nil, nil, &eventbus.RouterConfig{
		MaxBatch: -1,
		MaxWait:  -time.Second,
		Retry:    retry.Policy{MaxAttempts: -1},
	})
	require.Error(t, err)
	for _, want := range []string{"nil Transport", "nil Registry",
		"RouterConfig.MaxBatch", "RouterConfig.MaxWait", "RouterConfig.Retry: retry: Policy.MaxAttempts"} {
		require.ErrorContains(t, err, want)
	}
}

// On Kafka, HandleOnce applies a partition's events in batches: several
// events share one transaction, and the offsets of the batch are
// committed. Without MaxWait (the default) a batch is what has arrived,
// which for a backlog is many events; with it, a batch also waits.
func TestHandleOnceBatchesOnKafka(t *testing.T) {
	t.Parallel()
	for _, maxWait := range []time.Duration{0, time.Second} {
		t.Run(fmt.Sprintf("MaxWait=%v", maxWait), func(t *testing.T) {
			t.Parallel()
			pg := setupPG(t)
			k := setupKafka(t, 1)
			name := "batched-" + dddkittest.UniqueSuffix()
			const n = 50
			var mu sync.Mutex
			txs := map[string]int{} // transaction → events applied in it
			var calls atomic.Int64
			apply := applyOrder(&calls)
			r := k.batchRouter(t, maxWait)
			require.NoError(t, eventbus.HandleOnce(r, name, pg.inbox, func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
				tx, _ := postgres.TxFromContext(ctx)
				mu.Lock()
				txs[fmt.Sprintf("%p", tx)]++
				mu.Unlock()
				return apply(ctx, e, env)
			}))
			k.publishOrders(t, 0, n)
			start(t, r)
			testinfra.Eventually(t, 30*time.Second, func() bool { return pg.count(t, `SELECT count(*) FROM effects`) == n }, "not every event applied")
			testinfra.Eventually(t, 30*time.Second, func() bool { return committed(t, name, k.topic, 1) == n }, "offsets not committed")
			mu.Lock()
			defer mu.Unlock()
			t.Logf("%d transactions for %d events", len(txs), n)
			require.Less(t, len(txs), n/5, "events shared transactions (%d transactions for %d events)", len(txs), n)
			require.Equal(t, int64(n), calls.Load(), "each event applied once")
		})
	}
}

// The same event delivered three times in one batch, and once more in a
// later one, is applied once.
func TestHandleOnceBatchSameEventThreeTimesAppliedOnce(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	k := setupKafka(t, 1)
	name := "batch-billing-" + dddkittest.UniqueSuffix()
	var calls atomic.Int64
	r := k.batchRouter(t, time.Second)
	require.NoError(t, eventbus.HandleOnce(r, name, pg.inbox, applyOrder(&calls)))

	dup, marker := order("o-1", 10), order("o-1", 1)
	require.NoError(t, k.pub.Publish(context.Background(), dup, dup, dup, marker))
	start(t, r)
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, marker.ID) == 1
	}, "marker event not applied")

	late := order("o-1", 2)
	require.NoError(t, k.pub.Publish(context.Background(), dup, late))
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, late.ID) == 1
	}, "late event not applied")

	require.Equal(t, int64(3), calls.Load(), "the handler ran once per distinct event")
	require.Equal(t, 1, pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, dup.ID))
	require.Equal(t, 3, pg.count(t, `SELECT count(*) FROM effects`))
	require.True(t, pg.processed(t, name, dup.ID))
}

// A batch with a message that cannot be decoded and an event the handler
// fails on: both are dead-lettered, the others applied once, in order.
func TestHandleOnceBatchPoisonDeadLettered(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	k := setupKafka(t, 1)
	ctx := context.Background()
	_, err := pg.pool.Exec(ctx, `ALTER TABLE effects ADD COLUMN seq bigserial`)
	require.NoError(t, err)
	name := "batch-strict-" + dddkittest.UniqueSuffix()
	var calls atomic.Int64
	apply := applyOrder(&calls)
	var negative atomic.Int64
	r := k.batchRouter(t, time.Second)
	require.NoError(t, eventbus.HandleOnce(r, name, pg.inbox, func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
		if err := apply(ctx, e, env); err != nil {
			return err
		}
		if e.Amount < 0 {
			negative.Add(1)
			return errors.New("negative amount")
		}
		return nil
	}))

	var envs []aggregate.Envelope
	for k, amount := range []int{1, 2, 0, 3, -5, 4, 5} {
		id := "o-1"
		if k == 2 || k == 4 { // keys of their own: a dead letter parks the later events of its key
			id = fmt.Sprintf("o-poison-%d", k)
		}
		envs = append(envs, order(id, amount))
	}
	msgs := k.encode(t, envs...)
	msgs[2].Payload = []byte(`{"Amount": "not a number"}`) // cannot be decoded
	require.NoError(t, k.client.Publisher().Publish(k.topic, msgs...))
	dl := subscribeAll(t, k.client, k.deadLetter)
	start(t, r)

	testinfra.Eventually(t, 30*time.Second, func() bool {
		return pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, envs[6].ID) == 1 && len(dl.all()) == 2
	}, "last event not applied or poison not dead-lettered")

	var amounts []int
	rows, err := pg.pool.Query(ctx, `SELECT amount FROM effects ORDER BY seq`)
	require.NoError(t, err)
	amounts, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 4, 5}, amounts, "each good event applied once, in order")
	require.Equal(t, int64(3), negative.Load(), "the poison's run in its batch counts as the first of its 3 attempts")
	for _, poison := range []string{envs[2].ID, envs[4].ID} {
		require.False(t, pg.processed(t, name, poison), "a dead-lettered event is not marked processed")
	}
	got := dl.all()
	require.Equal(t, envs[2].ID, got[0].Metadata.Get(eventbus.HeaderEventID))
	require.Contains(t, got[0].Metadata.Get(eventbus.HeaderDeadLetterReason), "cannot decode")
	require.Equal(t, envs[4].ID, got[1].Metadata.Get(eventbus.HeaderEventID))
	require.Contains(t, got[1].Metadata.Get(eventbus.HeaderDeadLetterReason), "gave up after 3 attempts: negative amount")
	for _, m := range got {
		require.Equal(t, k.topic, m.Metadata.Get(eventbus.HeaderDeadLetterTopic))
		require.Equal(t, name, m.Metadata.Get(eventbus.HeaderDeadLetterHandler))
	}
}

// Statements queued with postgres.QueueExec in a HandleOnce handler go to
// PostgreSQL with the batch's commit; when one fails, the batch is
// handled one event at a time, so that only the failing event is
// dead-lettered.
func TestHandleOnceBatchQueuedStatementFails(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	k := setupKafka(t, 1)
	ctx := context.Background()
	_, err := pg.pool.Exec(ctx, `ALTER TABLE effects ADD COLUMN seq bigserial, ADD CHECK (amount >= 0)`)
	require.NoError(t, err)
	name := "batch-queued-" + dddkittest.UniqueSuffix()
	var calls atomic.Int64
	r := k.batchRouter(t, time.Second)
	require.NoError(t, eventbus.HandleOnce(r, name, pg.inbox, func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
		calls.Add(1)
		return postgres.QueueExec(ctx, `INSERT INTO effects (event_id, aggregate_id, amount) VALUES ($1, $2, $3)`, env.ID, env.AggregateID, e.Amount)
	}))
	var envs []aggregate.Envelope
	for _, amount := range []int{1, 2, -3, 4, 5} {
		id := "o-1"
		if amount < 0 { // a key of its own: a dead letter parks the later events of its key
			id = "o-poison"
		}
		envs = append(envs, order(id, amount))
	}
	require.NoError(t, k.pub.Publish(ctx, envs...))
	dl := subscribeAll(t, k.client, k.deadLetter)
	start(t, r)

	testinfra.Eventually(t, 30*time.Second, func() bool {
		return pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, envs[4].ID) == 1 && len(dl.all()) == 1
	}, "last event not applied or the failing one not dead-lettered")
	rows, err := pg.pool.Query(ctx, `SELECT amount FROM effects ORDER BY seq`)
	require.NoError(t, err)
	amounts, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 4, 5}, amounts, "each good event applied once, in order")
	require.Equal(t, envs[2].ID, dl.all()[0].Metadata.Get(eventbus.HeaderEventID))
	require.Contains(t, dl.all()[0].Metadata.Get(eventbus.HeaderDeadLetterReason), "check constraint")
	require.False(t, pg.processed(t, name, envs[2].ID))
	require.Greater(t, calls.Load(), int64(len(envs)), "the handlers ran again after the batch failed")
}

// A batched consumer stopped and started again continues at its committed
// offsets: every event applied exactly once across both runs.
func TestHandleOnceBatchRestartResumesFromCommittedOffset(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	k := setupKafka(t, 2)
	name := "batch-ledger-" + dddkittest.UniqueSuffix()
	const n = 20
	publish := func(from int) { k.publishOrders(t, from, n) }
	var calls atomic.Int64
	newConsumer := func() *eventbus.Router {
		r := k.batchRouter(t, 0)
		require.NoError(t, eventbus.HandleOnce(r, name, pg.inbox, applyOrder(&calls)))
		return r
	}

	publish(0)
	stop1 := start(t, newConsumer())
	testinfra.Eventually(t, 30*time.Second, func() bool { return pg.count(t, `SELECT count(*) FROM effects`) == n }, "first run incomplete")
	stop1()
	require.Equal(t, int64(n), committed(t, name, k.topic, 2), "the first run committed the offsets of what it handled")

	publish(n) // while no consumer runs
	start(t, newConsumer())
	testinfra.Eventually(t, 30*time.Second, func() bool { return pg.count(t, `SELECT count(*) FROM effects`) == 2*n }, "second run incomplete")
	time.Sleep(300 * time.Millisecond) // anything redelivered would show up now

	require.Equal(t, 2*n, pg.count(t, `SELECT count(*) FROM effects`), "nothing applied twice")
	require.Equal(t, 2*n, pg.count(t, `SELECT count(DISTINCT event_id) FROM effects`), "nothing lost")
	require.Equal(t, int64(2*n), calls.Load(), "no handler re-ran")
}

// committed returns the sum of the offsets group committed on topic.
func committed(t *testing.T, group, topic string, partitions int32) int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(kafkatest.Brokers(t), kafkatest.Config(t))
	require.NoError(t, err)
	defer admin.Close()
	ps := make([]int32, partitions)
	for p := range ps {
		ps[p] = int32(p)
	}
	res, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: ps})
	require.NoError(t, err)
	var sum int64
	for _, p := range ps {
		if b := res.GetBlock(topic, p); b != nil && b.Offset > 0 {
			sum += b.Offset
		}
	}
	return sum
}
