package kafkatest_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/dddkit/dddkit/dddkittest/kafkatest"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
)

// TestKafkaRoundTrip publishes one message through watermill-kafka and
// consumes it through a consumer group on the real broker.
func TestKafkaRoundTrip(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, 3)
	logger := watermill.NopLogger{}

	pubCfg := kafka.DefaultSaramaSyncPublisherConfig()
	pubCfg.Version = kafkatest.Version
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:               brokers,
		Marshaler:             kafka.DefaultMarshaler{},
		OverwriteSaramaConfig: pubCfg,
	}, logger)
	require.NoError(t, err)
	defer pub.Close()

	subCfg := kafka.DefaultSaramaSubscriberConfig()
	subCfg.Version = kafkatest.Version
	subCfg.Consumer.Offsets.Initial = -2 // oldest: the message may be produced before the group joins
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               brokers,
		Unmarshaler:           kafka.DefaultMarshaler{},
		ConsumerGroup:         "group-" + topic,
		OverwriteSaramaConfig: subCfg,
	}, logger)
	require.NoError(t, err)
	defer sub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	msgs, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)

	sent := message.NewMessage(watermill.NewUUID(), []byte(`{"hello":"kafka"}`))
	sent.Metadata.Set("event_name", "test.hello")
	require.NoError(t, pub.Publish(topic, sent))

	select {
	case got := <-msgs:
		require.Equal(t, sent.UUID, got.UUID)
		require.Equal(t, `{"hello":"kafka"}`, string(got.Payload))
		require.Equal(t, "test.hello", got.Metadata.Get("event_name"))
		got.Ack()
	case <-ctx.Done():
		t.Fatal("message not consumed within 60s")
	}
}

// TestKafkaBrokerDoesNotCreateTopics proves that the test broker runs
// with auto.create.topics.enable=false (scripts/testenv.sh), so that the
// tests that pass against it depend on no topic created on first use:
// every topic is made by kafkatest.Topic(s) or by the code under test.
func TestKafkaBrokerDoesNotCreateTopics(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	cfg := kafkatest.Config(t)
	client, err := sarama.NewClient(brokers, cfg)
	require.NoError(t, err)
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	require.NoError(t, err)
	defer admin.Close()
	broker := client.Brokers()[0]
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{
		Type: sarama.BrokerResource, Name: strconv.Itoa(int(broker.ID())), ConfigNames: []string{"auto.create.topics.enable"},
	}}, sarama.DescribeConfigsOptions{})
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.Zero(t, results[0].ErrorCode, results[0].ErrorMsg)
	require.Len(t, results[0].Configs, 1)
	require.Equal(t, "false", results[0].Configs[0].Value, "the test broker must not create topics on first use (see scripts/testenv.sh)")
}
