package kafka_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/kafka"
)

// suiteClient returns a client for watermill's Pub/Sub suite, closed
// when the test ends: the test broker, topics of partitions partitions
// (the suite creates its topics through SubscribeInitialize), and
// consumer-group timings that let the suite's many joins and leaves
// rebalance quickly (as watermill-kafka's own suite does).
func suiteClient(t *testing.T, partitions int32) *kafka.Client {
	t.Helper()
	cfg := testConfig(t)
	cfg.Topics.Partitions = partitions
	cfg.Configure = func(s *sarama.Config) {
		s.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
		s.Consumer.Group.Rebalance.Timeout = 3 * time.Second
		s.ChannelBufferSize = 10240
	}
	c, err := kafka.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}

// suiteTopics names the suite's topics ("wm-" + its test ID; the tests
// that use several add "-1", "-2", ...) and deletes them all when t ends.
func suiteTopics(t *testing.T) func(tests.TestContext) string {
	var mu sync.Mutex
	var prefixes []string
	brokers := kafkatest.Brokers(t)
	t.Cleanup(func() {
		admin, err := sarama.NewClusterAdmin(brokers, kafkatest.Config(t))
		require.NoError(t, err)
		defer admin.Close()
		topics, err := admin.ListTopics()
		require.NoError(t, err)
		for name := range topics {
			for _, p := range prefixes {
				if strings.HasPrefix(name, p) {
					if err := admin.DeleteTopic(name); err != nil {
						t.Logf("delete topic %s: %v", name, err)
					}
					break
				}
			}
		}
	})
	return func(tc tests.TestContext) string {
		name := "wm-" + string(tc.TestID)
		mu.Lock()
		prefixes = append(prefixes, name)
		mu.Unlock()
		return name
	}
}

// kafkaFeatures is what the Kafka transport honestly claims: consumer
// groups, at-least-once (not exactly-once) delivery, and messages that
// outlive the publisher and subscriber that handled them. Order is per
// key (per partition), not across keys: the suite's order tests publish
// their ordered streams under random keys, so they run separately on
// one-partition topics (TestPubSubSuiteOrder). A subscriber of the
// suite's constructor joins the consumer group "test", which has
// committed what earlier members read: NewSubscriberReceivesOldMessages
// (a group-less reader's feature) is false. Reconnects (a broker
// restart) are tested by the outbox relay's and consumers' own restart
// tests, not here: RestartServiceCommand stays nil.
func kafkaFeatures(t *testing.T) tests.Features {
	return tests.Features{
		ConsumerGroups:      true,
		ExactlyOnceDelivery: false,
		GuaranteedOrder:     false,
		Persistent:          true,
		GenerateTopicFunc:   suiteTopics(t),
	}
}

// TestPubSubSuite runs watermill's universal Pub/Sub suite against a
// Client's publisher and subscribers on the real broker.
func TestPubSubSuite(t *testing.T) {
	kafkatest.Brokers(t)
	t.Parallel()
	client := suiteClient(t, kafka.DefaultPartitions)
	subs := closeAtEnd(t)
	pubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		sub, err := client.Subscriber(group)
		require.NoError(t, err)
		subs(sub)
		return client.Publisher(), sub
	}
	tests.TestPubSub(t, kafkaFeatures(t),
		func(t *testing.T) (message.Publisher, message.Subscriber) { return pubSub(t, "test") },
		pubSub)
}

// closeAtEnd returns a function that registers a subscriber to be closed
// when t ends: some tests of the suite leave theirs open (closing twice
// is a no-op).
func closeAtEnd(t *testing.T) func(message.Subscriber) {
	var mu sync.Mutex
	var subs []message.Subscriber
	t.Cleanup(func() {
		for _, s := range subs {
			require.NoError(t, s.Close())
		}
	})
	return func(s message.Subscriber) {
		mu.Lock()
		defer mu.Unlock()
		subs = append(subs, s)
	}
}

// TestPubSubSuiteOrder runs the suite's tests that need messages kept in
// order (TestPublishSubscribeInOrder, TestNoAck) on topics of one
// partition, where Kafka keeps the order of every message.
func TestPubSubSuiteOrder(t *testing.T) {
	kafkatest.Brokers(t)
	t.Parallel()
	client := suiteClient(t, 1)
	subs := closeAtEnd(t)
	features := kafkaFeatures(t)
	features.GuaranteedOrder = true
	pubSub := func(t *testing.T) (message.Publisher, message.Subscriber) {
		sub, err := client.Subscriber("test")
		require.NoError(t, err)
		subs(sub)
		return client.Publisher(), sub
	}
	for name, test := range map[string]func(*testing.T, tests.TestContext, tests.PubSubConstructor){
		"TestPublishSubscribeInOrder": tests.TestPublishSubscribeInOrder,
		"TestNoAck":                   tests.TestNoAck,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, pubSub)
		})
	}
}
