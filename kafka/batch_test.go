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
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/retry"
)

// batchConfig is the configuration of the batch consumer tests: quick
// retries, the bundle's dead-letter topic.
func (b *kafkaBundle) batchConfig() *eventbus.BatchConfig {
	return &eventbus.BatchConfig{
		Logger:          testLogger(),
		DeadLetterTopic: b.deadLetter,
		Retry:           retry.Policy{MaxAttempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
	}
}

// runBatch runs a batch consumer until stop is called (or the test ends).
func runBatch(t *testing.T, c *kafka.BatchConsumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
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

func TestBatchConsumerConfigErrors(t *testing.T) {
	t.Parallel()
	_, err := kafka.NewBatchConsumer[orderPlaced](nil, nil, nil, "", nil, &eventbus.BatchConfig{
		MaxBatch: -1,
		MaxWait:  -time.Second,
		Retry:    retry.Policy{MaxAttempts: -1},
	})
	require.Error(t, err)
	for _, want := range []string{"nil Client", "nil Registry", "nil Inbox", "empty name", "nil function",
		"BatchConfig.MaxBatch", "BatchConfig.MaxWait", "BatchConfig.Retry: retry: Policy.MaxAttempts"} {
		require.ErrorContains(t, err, want)
	}
}

// The same event delivered three times in one batch, and once more in a
// later one, is applied once.
func TestBatchConsumerSameEventThreeTimesAppliedOnce(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	k := setupKafka(t, 1)
	name := "batch-billing-" + dddkittest.UniqueSuffix()
	var calls atomic.Int64
	c, err := kafka.NewBatchConsumer(k.client, k.reg, pg.inbox, name, applyOrder(&calls), k.batchConfig())
	require.NoError(t, err)

	dup, marker := order("o-1", 10), order("o-1", 1)
	require.NoError(t, k.pub.Publish(context.Background(), dup, dup, dup, marker))
	runBatch(t, c)
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
func TestBatchConsumerPoisonInBatchDeadLettered(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	k := setupKafka(t, 1)
	ctx := context.Background()
	_, err := pg.pool.Exec(ctx, `ALTER TABLE effects ADD COLUMN seq bigserial`)
	require.NoError(t, err)
	name := "batch-strict-" + dddkittest.UniqueSuffix()
	var calls atomic.Int64
	apply := applyOrder(&calls)
	c, err := kafka.NewBatchConsumer(k.client, k.reg, pg.inbox, name, func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
		if err := apply(ctx, e, env); err != nil {
			return err
		}
		if e.Amount < 0 {
			return errors.New("negative amount")
		}
		return nil
	}, k.batchConfig())
	require.NoError(t, err)

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
	runBatch(t, c)

	testinfra.Eventually(t, 30*time.Second, func() bool {
		return pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, envs[6].ID) == 1 && len(dl.all()) == 2
	}, "last event not applied or poison not dead-lettered")

	var amounts []int
	rows, err := pg.pool.Query(ctx, `SELECT amount FROM effects ORDER BY seq`)
	require.NoError(t, err)
	amounts, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 4, 5}, amounts, "each good event applied once, in order")
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

// A batch consumer stopped and started again continues at its committed
// offsets: every event applied exactly once across both runs.
func TestBatchConsumerRestartResumesFromCommittedOffset(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	k := setupKafka(t, 2)
	name := "batch-ledger-" + dddkittest.UniqueSuffix()
	const n = 20
	publish := func(from int) { k.publishOrders(t, from, n) }
	var calls atomic.Int64
	newConsumer := func() *kafka.BatchConsumer {
		c, err := kafka.NewBatchConsumer(k.client, k.reg, pg.inbox, name, applyOrder(&calls), k.batchConfig())
		require.NoError(t, err)
		return c
	}

	publish(0)
	stop1 := runBatch(t, newConsumer())
	testinfra.Eventually(t, 30*time.Second, func() bool { return pg.count(t, `SELECT count(*) FROM effects`) == n }, "first run incomplete")
	stop1()
	require.Equal(t, int64(n), committed(t, name, k.topic, 2), "the first run committed the offsets of what it handled")

	publish(n) // while no consumer runs
	runBatch(t, newConsumer())
	testinfra.Eventually(t, 30*time.Second, func() bool { return pg.count(t, `SELECT count(*) FROM effects`) == 2*n }, "second run incomplete")
	time.Sleep(300 * time.Millisecond) // anything redelivered would show up now

	require.Equal(t, 2*n, pg.count(t, `SELECT count(*) FROM effects`), "nothing applied twice")
	require.Equal(t, 2*n, pg.count(t, `SELECT count(DISTINCT event_id) FROM effects`), "nothing lost")
	require.Equal(t, int64(2*n), calls.Load(), "no handler re-ran")
}

// committed returns the sum of the offsets group committed on topic.
func committed(t *testing.T, group, topic string, partitions int32) int64 {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(testinfra.KafkaBrokers(t), testinfra.SaramaConfig(t))
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
