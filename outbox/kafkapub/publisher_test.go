package kafkapub_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/internal/kafkatest"
	"github.com/dddkit/dddkit/outbox/kafkapub"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

func newPublisher(t *testing.T) *kafkapub.Publisher {
	t.Helper()
	pub, err := kafkapub.NewPublisher(&kafkapub.Config{Brokers: testinfra.KafkaBrokers(t), Version: testinfra.KafkaVersion})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, pub.Close()) })
	return pub
}

func TestPublishBatchKeyedByAggregate(t *testing.T) {
	t.Parallel()
	brokers := testinfra.KafkaBrokers(t)
	topic := testinfra.Topic(t, 4)
	pub := newPublisher(t)

	var msgs []*message.Message
	for v := int64(1); v <= 20; v++ {
		for a := range 50 {
			env := aggregate.Envelope{ID: fmt.Sprintf("e-%d-%d", a, v), Name: "test.n", AggregateType: "t",
				AggregateID: fmt.Sprintf("agg-%d", a), Version: v, OccurredAt: time.Now(),
				Metadata: aggregate.Metadata{CorrelationID: "c"}}
			msgs = append(msgs, wire.ToMessage(env, []byte(`{"v":1}`)))
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
		require.Equal(t, m.Headers[wire.HeaderEventID], m.Headers["_watermill_message_uuid"])
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
	brokers := testinfra.KafkaBrokers(t)
	topic := testinfra.Topic(t, 1)
	pub := newPublisher(t)
	small := message.NewMessage("m1", []byte("ok"))
	big := message.NewMessage("m2", []byte(strings.Repeat("x", 2<<20)))
	err := pub.Publish(topic, small, big)
	require.ErrorContains(t, err, "MaxMessageBytes")
	require.NoError(t, pub.Publish(topic))
	require.Empty(t, kafkatest.ReadAll(t, brokers, topic), "nothing of the refused call was sent")
}

func TestPublishContextAndClose(t *testing.T) {
	t.Parallel()
	topic := testinfra.Topic(t, 1)
	pub := newPublisher(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := pub.PublishContext(ctx, topic, message.NewMessage("m1", nil))
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, pub.Close())
	require.NoError(t, pub.Close())
	require.ErrorIs(t, pub.Publish(topic, message.NewMessage("m2", nil)), kafkapub.ErrClosed)
}

func TestConfig(t *testing.T) {
	t.Parallel()
	var nilCfg *kafkapub.Config
	require.Error(t, nilCfg.Validate())
	err := (&kafkapub.Config{Version: sarama.V0_10_2_0}).Validate()
	require.ErrorContains(t, err, "Brokers")
	require.ErrorContains(t, err, "0.11")

	base := sarama.NewConfig()
	base.Producer.RequiredAcks = sarama.WaitForLocal
	base.Producer.Compression = sarama.CompressionLZ4
	sc, err := (&kafkapub.Config{Brokers: []string{"x:1"}, Sarama: base}).SaramaConfig()
	require.NoError(t, err)
	require.Equal(t, sarama.WaitForAll, sc.Producer.RequiredAcks)
	require.True(t, sc.Producer.Idempotent)
	require.Equal(t, 1, sc.Net.MaxOpenRequests)
	require.Equal(t, sarama.CompressionLZ4, sc.Producer.Compression)
	require.Equal(t, kafkapub.DefaultVersion, sc.Version)
	require.Equal(t, "dddkit", sc.ClientID)
	require.Equal(t, sarama.WaitForLocal, base.Producer.RequiredAcks, "the caller's config is not changed")

	sc, err = (&kafkapub.Config{Brokers: []string{"x:1"}, Version: sarama.V4_0_0_0, ClientID: "me"}).SaramaConfig()
	require.NoError(t, err)
	require.Equal(t, sarama.V4_0_0_0, sc.Version)
	require.Equal(t, "me", sc.ClientID)
}
