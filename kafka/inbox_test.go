package kafka_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
)

// The tests of an eventbus.Router with the inbox on Kafka (HandleOnce).

// The same event delivered three times is applied once.
func TestKafkaInboxSameEventThreeTimesAppliedOnce(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	k := setupKafka(t, 1)
	var calls atomic.Int64
	name := "billing-" + dddkittest.UniqueSuffix()
	r := k.router(t, nil)
	require.NoError(t, eventbus.HandleOnce(r, name, pg.inbox, applyOrder(&calls)))
	start(t, r)

	dup := order("o-1", 10)
	marker := order("o-1", 1)
	require.NoError(t, k.pub.Publish(context.Background(), dup, dup, dup, marker))
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, marker.ID) == 1
	}, "marker event not applied")

	testinfra.Eventually(t, 30*time.Second, func() bool { return committed(t, name, k.topic, 1) == 4 }, "not every copy consumed")
	require.Equal(t, int64(2), calls.Load(), "the handler ran once per distinct event")
	require.Equal(t, 1, pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, dup.ID))
	require.True(t, pg.processed(t, name, dup.ID))
}

// A consumer stopped and started again continues at its committed offset:
// every event applied exactly once across both runs.
func TestKafkaConsumerRestartResumesFromCommittedOffset(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	k := setupKafka(t, 2)
	const n = 20
	publish := func(from int) { k.publishOrders(t, from, n) }
	var calls atomic.Int64

	var first atomic.Int64
	r1 := k.router(t, &first)
	require.NoError(t, eventbus.HandleOnce(r1, "ledger", pg.inbox, applyOrder(&calls)))
	stop1 := start(t, r1)
	publish(0)
	testinfra.Eventually(t, 30*time.Second, func() bool { return pg.count(t, `SELECT count(*) FROM effects`) == n }, "first run incomplete")
	stop1()

	publish(n) // while no consumer runs
	var second atomic.Int64
	r2 := k.router(t, &second)
	require.NoError(t, eventbus.HandleOnce(r2, "ledger", pg.inbox, applyOrder(&calls)))
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
	pg := setupPG(t)
	k := setupKafka(t, 1)
	var calls atomic.Int64
	r := k.router(t, nil)
	apply := applyOrder(&calls)
	require.NoError(t, eventbus.HandleOnce(r, "strict", pg.inbox, func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
		if err := apply(ctx, e, env); err != nil {
			return err
		}
		if e.Amount < 0 {
			return errors.New("negative amount")
		}
		return nil
	}))
	dl := subscribeAll(t, k.client, k.deadLetter)
	start(t, r)

	poison, next := order("o-1", -5), order("o-2", 5) // another key: o-1's later events wait behind its dead letter
	require.NoError(t, k.pub.Publish(context.Background(), poison, next))
	testinfra.Eventually(t, 30*time.Second, func() bool {
		return pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, next.ID) == 1 && len(dl.all()) == 1
	}, "next event not applied or poison not dead-lettered")

	require.Equal(t, int64(4), calls.Load(), "3 attempts for the poison, 1 for the next")
	require.Equal(t, 0, pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, poison.ID), "the poison's effects rolled back")
	require.False(t, pg.processed(t, "strict", poison.ID), "a dead-lettered event is not marked processed, so it can be replayed")
	m := dl.all()[0]
	require.Equal(t, poison.ID, m.Metadata.Get(eventbus.HeaderEventID))
	require.Equal(t, k.topic, m.Metadata.Get(eventbus.HeaderDeadLetterTopic))
	require.Contains(t, m.Metadata.Get(eventbus.HeaderDeadLetterReason), "negative amount")
}
