package kafka_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/kafka"
)

// describeTopic returns the partition count of topic and its
// configuration entries that were set explicitly, or ok=false when the
// topic does not exist.
func describeTopic(t *testing.T, topic string) (partitions int, cfg map[string]string, ok bool) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(kafkatest.Brokers(t), kafkatest.Config(t))
	require.NoError(t, err)
	defer admin.Close()
	meta, err := admin.DescribeTopics([]string{topic})
	require.NoError(t, err)
	require.Len(t, meta, 1)
	if errors.Is(meta[0].Err, sarama.ErrUnknownTopicOrPartition) {
		return 0, nil, false
	}
	require.ErrorIs(t, meta[0].Err, sarama.ErrNoError)
	results, err := admin.DescribeConfigs([]*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic}}, sarama.DescribeConfigsOptions{})
	require.NoError(t, err)
	require.Len(t, results, 1)
	require.Zero(t, results[0].ErrorCode, results[0].ErrorMsg)
	cfg = map[string]string{}
	for _, e := range results[0].Configs {
		if e.Source == sarama.SourceTopic {
			cfg[e.Name] = e.Value
		}
	}
	return len(meta[0].Partitions), cfg, true
}

func TestProvisionCreatesThenVerifies(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Topics = kafka.TopicDefaults{Partitions: 3, Config: map[string]string{"retention.ms": "86400000"}}
	client, err := kafka.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	ctx := context.Background()
	a, b := kafkatest.TopicName(t), kafkatest.TopicName(t)

	require.NoError(t, client.Provision(ctx,
		kafka.TopicSpec{Name: a},
		kafka.TopicSpec{Name: b, Partitions: 2, Config: map[string]string{"min.insync.replicas": "1", "retention.ms": "3600000"}},
		kafka.TopicSpec{Name: a}, // named twice, the same: fine
	))
	parts, conf, ok := describeTopic(t, a)
	require.True(t, ok)
	require.Equal(t, 3, parts, "Config.Topics.Partitions")
	require.Equal(t, map[string]string{"retention.ms": "86400000"}, conf, "Config.Topics.Config")
	parts, conf, ok = describeTopic(t, b)
	require.True(t, ok)
	require.Equal(t, 2, parts)
	require.Equal(t, map[string]string{"retention.ms": "3600000", "min.insync.replicas": "1"}, conf, "the spec's entries over the defaults")

	// Again: nothing to do.
	require.NoError(t, client.Provision(ctx, kafka.TopicSpec{Name: a}, kafka.TopicSpec{Name: b, Partitions: 2}))

	// Another partition count: a typed error naming topic, want and got;
	// the topic is left as it is.
	err = client.Provision(ctx, kafka.TopicSpec{Name: a, Partitions: 6}, kafka.TopicSpec{Name: b, Partitions: 2})
	require.ErrorIs(t, err, kafka.ErrTopicMismatch)
	var mismatch *kafka.TopicMismatchError
	require.ErrorAs(t, err, &mismatch)
	require.Equal(t, kafka.TopicMismatchError{Topic: a, Want: 6, Got: 3}, *mismatch)
	require.Contains(t, err.Error(), a)
	parts, _, _ = describeTopic(t, a)
	require.Equal(t, 3, parts)

	// Bad specs are refused before anything is asked of the brokers.
	err = client.Provision(ctx, kafka.TopicSpec{}, kafka.TopicSpec{Name: "a b"}, kafka.TopicSpec{Name: "x", Partitions: -1},
		kafka.TopicSpec{Name: a, Partitions: 3}, kafka.TopicSpec{Name: a, Partitions: 4})
	require.ErrorContains(t, err, "empty topic name")
	require.ErrorContains(t, err, `"a b"`)
	require.ErrorContains(t, err, "Partitions is -1")
	require.ErrorContains(t, err, "named twice with different settings")
	require.NotErrorIs(t, err, kafka.ErrTopicMismatch)
}

// Replicas starting together provision the same topics at once, each
// with a client of its own: every one succeeds and the topics are made
// once, as asked.
func TestProvisionConcurrently(t *testing.T) {
	t.Parallel()
	a, b := kafkatest.TopicName(t), kafkatest.TopicName(t)
	const replicas = 3
	clients := make([]*kafka.Client, replicas)
	for i := range clients {
		clients[i] = newClient(t)
	}
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = c.Provision(context.Background(), kafka.TopicSpec{Name: a}, kafka.TopicSpec{Name: b, Partitions: 4})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "replica %d", i)
	}
	parts, _, _ := describeTopic(t, a)
	require.Equal(t, int(kafka.DefaultPartitions), parts)
	parts, _, _ = describeTopic(t, b)
	require.Equal(t, 4, parts)
}

// Nothing creates a topic on first use: publishing to a topic that was
// not provisioned fails, and the topic still does not exist afterwards,
// while publishing to a provisioned one works.
func TestPublishNeedsAProvisionedTopic(t *testing.T) {
	t.Parallel()
	client := newClient(t)
	missing, provisioned := kafkatest.TopicName(t), kafkatest.TopicName(t)
	require.NoError(t, client.Provision(context.Background(), kafka.TopicSpec{Name: provisioned, Partitions: 1}))
	pub := client.Publisher().(interface {
		PublishContext(context.Context, string, ...*message.Message) error
	})

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	require.Error(t, pub.PublishContext(ctx, missing, message.NewMessage("m-1", []byte(`{}`))))
	_, _, exists := describeTopic(t, missing)
	require.False(t, exists, "publishing did not create the topic")

	require.NoError(t, pub.PublishContext(ctx, provisioned, message.NewMessage("m-2", []byte(`{}`))))
}

// SubscribeInitialize of a Client's subscriber provisions the topic with
// the client's defaults; the subscriber then reads what is published.
func TestSubscribeInitializeProvisions(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Topics.Partitions = 2
	client, err := kafka.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, client.Close()) })
	topic := kafkatest.TopicName(t)

	sub, err := client.Subscriber("init-" + topic)
	require.NoError(t, err)
	defer sub.Close()
	init, ok := sub.(message.SubscribeInitializer)
	require.True(t, ok, "a Client's subscriber is a SubscribeInitializer")
	require.NoError(t, init.SubscribeInitialize(topic))
	require.NoError(t, init.SubscribeInitialize(topic), "idempotent")
	parts, _, ok := describeTopic(t, topic)
	require.True(t, ok)
	require.Equal(t, 2, parts)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	require.NoError(t, client.Publisher().Publish(topic, message.NewMessage("m-1", []byte(`{"n":1}`))))
	select {
	case m := <-ch:
		require.Equal(t, "m-1", m.UUID)
		m.Ack()
	case <-ctx.Done():
		t.Fatal("the message did not arrive")
	}
}
