package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
)

func TestPublishBatchKeyedByAggregate(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, 4)
	pub := newClient(t).Publisher()

	var msgs []*message.Message
	for v := int64(1); v <= 20; v++ {
		for a := range 50 {
			env := aggregate.Envelope{ID: fmt.Sprintf("e-%d-%d", a, v), Name: "test.n", AggregateType: "t",
				AggregateID: fmt.Sprintf("agg-%d", a), Version: v, OccurredAt: time.Now(),
				Metadata: aggregate.Metadata{CorrelationID: "c"}}
			msgs = append(msgs, wire.ToMessage(env, "urn:test", []byte(`{"v":1}`), 1))
		}
	}
	start := time.Now()
	require.NoError(t, pub.Publish(topic, msgs...))
	t.Logf("1000 messages acknowledged in %s", time.Since(start))

	got := kafkatest.ReadAll(t, brokers, topic)
	require.Len(t, got, 1000)
	partitionOf := map[string]int32{}
	lastVersion := map[string]string{}
	partitions := map[int32]bool{}
	for _, m := range got {
		agg := m.Headers[wire.HeaderAggregateID]
		require.Equal(t, agg, m.Key, "key = aggregate ID")
		if p, ok := partitionOf[agg]; ok {
			require.Equal(t, p, m.Partition, "one aggregate, one partition")
		}
		partitionOf[agg] = m.Partition
		partitions[m.Partition] = true
		require.Equal(t, "c", m.Headers[wire.HeaderCorrelationID])
		require.NotEmpty(t, m.Headers[wire.HeaderEventID])
		require.NotContains(t, m.Headers, "_watermill_message_uuid", "the event ID travels once, as ce_id")
		var prev int
		if lastVersion[agg] != "" {
			_, _ = fmt.Sscan(lastVersion[agg], &prev)
		}
		var cur int
		_, _ = fmt.Sscan(m.Headers[wire.HeaderAggregateVersion], &cur)
		require.Equal(t, prev+1, cur, "aggregate %s in order", agg)
		lastVersion[agg] = m.Headers[wire.HeaderAggregateVersion]
	}
	require.Len(t, partitions, 4, "aggregates spread over the partitions")
}

func TestPublishRejectsOversizedBeforeSending(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, 1)
	pub := newClient(t).Publisher()
	small := message.NewMessage("m1", []byte("ok"))
	big := message.NewMessage("m2", []byte(strings.Repeat("x", 2<<20)))
	err := pub.Publish(topic, small, big)
	require.ErrorContains(t, err, "MaxMessageBytes")
	require.NoError(t, pub.Publish(topic))
	require.Empty(t, kafkatest.ReadAll(t, brokers, topic), "nothing of the refused call was sent")
}

// The publisher is shared: closing it does not close the producer, the
// client's Close does; PublishContext gives up when its context ends.
func TestPublisherIsSharedAndClosedByTheClient(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, 1)
	c, err := kafka.NewClient(testConfig(t))
	require.NoError(t, err)
	pub := c.Publisher()
	cp, ok := pub.(outbox.ContextPublisher)
	require.True(t, ok, "the relay can stop a publish through its context")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, cp.PublishContext(ctx, topic, message.NewMessage("m0", nil)), context.Canceled)

	require.NoError(t, pub.Close())
	require.NoError(t, c.Publisher().Publish(topic, message.NewMessage("m1", nil)), "a publisher's Close leaves the producer open")
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	require.ErrorIs(t, pub.Publish(topic, message.NewMessage("m2", nil)), kafka.ErrClosed)
	require.ErrorIs(t, cp.PublishContext(context.Background(), topic, message.NewMessage("m3", nil)), kafka.ErrClosed)

	got := kafkatest.ReadAll(t, brokers, topic)
	ids := make([]string, len(got))
	for i, m := range got {
		ids[i] = m.Headers[wire.HeaderEventID] // a plain message's UUID travels as ce_id
	}
	require.Contains(t, ids, "m1")
	require.NotContains(t, ids, "m2")
	require.NotContains(t, ids, "m3")
}

// PublishAsync returns once the messages are handed over; several calls
// stay in flight at once, each Delivery completes with its own
// acknowledgements, and one goroutine's calls keep their order per key.
func TestPublishAsyncPipelines(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, 3)
	c := newClient(t)

	ctx := context.Background()
	var deliveries []*kafka.Delivery
	for call := range 10 {
		msgs := make([]*message.Message, 0, 30)
		for a := range 30 {
			env := aggregate.Envelope{ID: fmt.Sprintf("e-%d-%d", a, call+1), Name: "test.n", AggregateType: "t",
				AggregateID: fmt.Sprintf("agg-%d", a), Version: int64(call + 1), OccurredAt: time.Now()}
			msgs = append(msgs, wire.ToMessage(env, "urn:test", []byte(`{}`), 1))
		}
		d, err := c.PublishAsync(ctx, topic, msgs...)
		require.NoError(t, err)
		deliveries = append(deliveries, d)
	}
	for _, d := range deliveries {
		require.NoError(t, d.Wait(ctx))
		select {
		case <-d.Done():
		default:
			t.Fatal("Done not closed after Wait returned")
		}
		require.NoError(t, d.Err())
	}

	got := kafkatest.ReadAll(t, brokers, topic)
	require.Len(t, got, 300)
	last := map[string]int{}
	for _, m := range got {
		var v int
		_, _ = fmt.Sscan(m.Headers[wire.HeaderAggregateVersion], &v)
		require.Equal(t, last[m.Key]+1, v, "aggregate %s in order across calls", m.Key)
		last[m.Key] = v
	}

	// No messages: a completed Delivery. Refused messages: no Delivery.
	d, err := c.PublishAsync(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, d.Wait(ctx))
	_, err = c.PublishAsync(ctx, topic, message.NewMessage("big", []byte(strings.Repeat("x", 2<<20))))
	require.ErrorContains(t, err, "MaxMessageBytes")

	// A failing Delivery says how many of its messages failed.
	missing := "missing-" + topic
	d, err = c.PublishAsync(ctx, missing, message.NewMessage("m1", nil), message.NewMessage("m2", nil))
	require.NoError(t, err, "handed over; the failure comes with the acknowledgements")
	require.Nil(t, func() error {
		select {
		case <-d.Done():
			return nil // may already have failed
		default:
			return d.Err()
		}
	}(), "Err is nil until Done")
	err = d.Wait(ctx)
	require.ErrorContains(t, err, "2 of 2 messages to "+missing+" failed")

	require.NoError(t, c.Close())
	_, err = c.PublishAsync(ctx, topic, message.NewMessage("m3", nil))
	require.ErrorIs(t, err, kafka.ErrClosed)
}
