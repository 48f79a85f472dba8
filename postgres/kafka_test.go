package postgres_test

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	metrics "github.com/rcrowley/go-metrics"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/postgres"
)

// newKafkaPublisher returns the producer of a kafka.Client of its own (one
// per simulated process), closed when the test ends.
func newKafkaPublisher(t testing.TB, brokers []string) message.Publisher {
	pub, _ := newMeteredPublisher(t, brokers)
	return pub
}

// newMeteredPublisher is newKafkaPublisher that also returns the
// registry of its sarama metrics (testinfra.ProducerBatches).
func newMeteredPublisher(t testing.TB, brokers []string) (message.Publisher, metrics.Registry) {
	t.Helper()
	var reg metrics.Registry
	client, err := kafka.NewClient(&kafka.Config{Brokers: brokers, Configure: func(c *sarama.Config) { reg = c.MetricRegistry }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	return client.Publisher(), reg
}

// warmTopic publishes 6,000 small records across the partitions of topic,
// through a producer of its own, before a benchmark's clock starts. The
// first large appends to a new topic stall the broker once, about 5 ms
// per partition: a relay's first batch of 2,000 events was acknowledged
// after 65-72 ms on a new 12-partition topic and after 30 ms on a
// 6-partition one, the next ones after 5-10 ms, although the producer
// had published a record (or 2,000 small ones) to the topic, or 6,000 to
// another one, before; after 6,000 small records to the topic itself,
// the first batch took 5-13 ms. A service publishes to topics created
// long before: the stall is no work of the producer measured, and it
// weighs more on a short run (a raw producer's) than on a longer one.
func warmTopic(b *testing.B, brokers []string, topic string) {
	b.Helper()
	client, err := kafka.NewClient(&kafka.Config{Brokers: brokers})
	require.NoError(b, err)
	defer func() { require.NoError(b, client.Close()) }()
	msgs := make([]*message.Message, 6000)
	for i := range msgs {
		msgs[i] = message.NewMessage(watermill.NewUUID(), []byte("warm"))
	}
	require.NoError(b, client.Publisher().Publish(topic, msgs...))
}

// writeConcurrently writes events with several writers, each owning a
// share of the aggregates and writing its events in order, chunk events
// per write.
func writeConcurrently(t testing.TB, b *outboxBundle, events []aggregate.Envelope, writers, chunk int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			var mine []aggregate.Envelope
			for _, e := range events {
				if n, _ := strconv.Atoi(e.AggregateID[1:]); n%writers == w {
					mine = append(mine, e)
				}
			}
			for i := 0; i < len(mine); i += chunk {
				if err := b.ob.Write(t.Context(), mine[i:min(i+chunk, len(mine))]...); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestKafkaOrderWithThreeRelays: 1,000 aggregates × 20 events written by
// four concurrent writers, relayed to a 6-partition Kafka topic by three
// relays (three processes' worth: an Outbox and a kafka.Client each; the
// leader is stopped halfway, another takes over). Read back from Kafka,
// every aggregate's events arrive in version order, all on one partition,
// and none is missing.
func TestKafkaOrderWithThreeRelays(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, 6)
	b := newOutboxBundle(t, nil)
	b.useTopic(t, topic)

	var published atomic.Int64
	relays := make([]*outbox.Relay, 3)
	stops := make([]func(), 3)
	for i := range relays {
		var err error
		relays[i], err = outbox.NewRelay(b.open(t, &postgres.OutboxConfig{LeaderPollInterval: 100 * time.Millisecond}), newKafkaPublisher(t, brokers), b.reg, &outbox.RelayConfig{
			Hooks: outbox.Hooks{OnPublished: func(evs []aggregate.Envelope, _ time.Duration) {
				published.Add(int64(len(evs)))
			}},
		})
		require.NoError(t, err)
		stops[i] = startRelay(t, relays[i])
	}

	const aggregates, versions = 1000, 20
	events := cartHistory(aggregates, versions)
	start := time.Now()
	var wg sync.WaitGroup
	wg.Go(func() { writeConcurrently(t, b, events, 4, 50) })

	// Stop whichever relay leads once a third is through.
	testinfra.Eventually(t, 60*time.Second, func() bool { return published.Load() > int64(len(events)/3) }, "a third published")
	stopped := -1
	for i, r := range relays {
		if r.IsLeader() {
			stops[i]()
			stopped = i
			break
		}
	}
	require.NotEqual(t, -1, stopped, "a leader was running")
	wg.Wait()
	testinfra.Eventually(t, 120*time.Second, func() bool { return b.count(t, `true`) == 0 }, "outbox drained")
	took := time.Since(start)

	got := kafkatest.ReadAll(t, brokers, topic)
	check := outboxtest.NewOrderCheck()
	partition := map[string]int32{}
	for _, m := range got {
		agg := m.Headers[wire.HeaderAggregateID]
		v, err := strconv.ParseInt(m.Headers[wire.HeaderAggregateVersion], 10, 64)
		require.NoError(t, err)
		check.Add(agg, v, m.Headers[wire.HeaderEventID])
		if p, ok := partition[agg]; ok {
			require.Equal(t, p, m.Partition, "aggregate %s on one partition", agg)
		}
		partition[agg] = m.Partition
	}
	require.NoError(t, check.Complete(aggregates, versions))
	t.Logf("%d events written and relayed in %s through 3 relays (leader %d stopped midway); %d records in Kafka, %d duplicates",
		len(events), took.Round(time.Millisecond), stopped, len(got), check.Duplicates())
}
