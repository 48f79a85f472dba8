// Package kafkatest gives a test topics of its own on the Kafka broker
// named by TEST_KAFKA_BROKERS, with unique names, deleted when the test
// ends, so that tests can run in parallel against one broker; and reads
// a topic back. Without TEST_KAFKA_BROKERS the helpers skip the test with
// a message naming the variable.
//
// scripts/testenv.sh starts a throwaway broker (and PostgreSQL) and sets
// the variable; it also runs from the module cache of a `go get` copy:
//
//	bash "$(go env GOMODCACHE)/github.com/dddkit/dddkit@VERSION/scripts/testenv.sh" go test ./...
//
// The broker it starts does not create topics on first use
// (auto.create.topics.enable=false): create a test's topics with [Topic]
// or [Topics], or name the ones the code under test provisions with
// [TopicName].
//
// It is separate from dddkittest because it depends on sarama.
package kafkatest

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/dddkit/dddkit/dddkittest"
)

// EnvBrokers is the environment variable the helpers read: the
// comma-separated host:port list of a broker where tests may create and
// delete topics.
const EnvBrokers = "TEST_KAFKA_BROKERS"

// Version is the protocol version the helpers speak to the broker. Kafka
// 4 brokers no longer accept the 1.0 protocol sarama defaults to.
var Version = sarama.V3_6_0_0

// Brokers returns the brokers of TEST_KAFKA_BROKERS or skips the test.
func Brokers(t testing.TB) []string {
	t.Helper()
	v := os.Getenv(EnvBrokers)
	if v == "" {
		t.Skipf("skipping: needs Kafka; set %s (scripts/testenv.sh, or make test, starts a broker and sets it)", EnvBrokers)
	}
	return strings.Split(v, ",")
}

// Config returns a sarama configuration for the test broker: the pinned
// protocol version and a client ID naming dddkit's tests.
func Config(t testing.TB) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = Version
	cfg.ClientID = "dddkit-test"
	return cfg
}

// Topic creates a topic of the test's own (a unique name derived from
// the test's) with the given number of partitions, and deletes it when
// the test ends.
func Topic(t testing.TB, partitions int32) string {
	t.Helper()
	name := strings.ReplaceAll(dddkittest.UniqueName(t), "_", "-")
	Topics(t, partitions, name)
	return name
}

// Topics creates the named topics with the given number of partitions
// and deletes them when the test ends.
func Topics(t testing.TB, partitions int32, names ...string) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(Brokers(t), Config(t))
	if err != nil {
		t.Fatalf("kafkatest: kafka admin: %v", err)
	}
	for _, name := range names {
		if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
			_ = admin.Close()
			t.Fatalf("kafkatest: create topic %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		defer admin.Close()
		for _, name := range names {
			if err := admin.DeleteTopic(name); err != nil {
				t.Logf("kafkatest: delete topic %s: %v", name, err)
			}
		}
	})
	// A busy broker answers CreateTopic before every partition has a
	// leader; a producer that comes too soon fails.
	deadline := time.Now().Add(30 * time.Second)
	for !haveLeaders(admin, partitions, names) {
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: topics %v have no partition leaders after 30s", names)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// haveLeaders reports whether every partition of the topics has a leader.
func haveLeaders(admin sarama.ClusterAdmin, partitions int32, names []string) bool {
	metas, err := admin.DescribeTopics(names)
	if err != nil {
		return false
	}
	for _, m := range metas {
		if m.Err != sarama.ErrNoError || int32(len(m.Partitions)) != partitions {
			return false
		}
		for _, p := range m.Partitions {
			if p.Err != sarama.ErrNoError || p.Leader < 0 {
				return false
			}
		}
	}
	return true
}

// TopicName returns a unique topic name for a topic that the code under
// test creates (topic provisioning); the topic is deleted when the test
// ends, if it exists by then.
func TopicName(t testing.TB) string {
	t.Helper()
	name := strings.ReplaceAll(dddkittest.UniqueName(t), "_", "-")
	DeleteTopicsAtEnd(t, name)
	return name
}

// DeleteTopicsAtEnd deletes the named topics, those that exist, when the
// test ends: for topics the code under test creates.
func DeleteTopicsAtEnd(t testing.TB, names ...string) {
	t.Helper()
	brokers := Brokers(t)
	t.Cleanup(func() {
		admin, err := sarama.NewClusterAdmin(brokers, Config(t))
		if err != nil {
			t.Logf("kafkatest: kafka admin: %v", err)
			return
		}
		defer admin.Close()
		for _, name := range names {
			if err := admin.DeleteTopic(name); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				t.Logf("kafkatest: delete topic %s: %v", name, err)
			}
		}
	})
}
