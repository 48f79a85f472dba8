// Package testinfra gives tests their own piece of the Kafka broker that
// `make test` starts (see scripts/testenv.sh): topics that belong to one
// test and are deleted when it ends, so tests can run in parallel against
// one broker. (A PostgreSQL schema of a test's own comes from
// dddkittest/pgtest.)
//
// Without TEST_KAFKA_BROKERS the helpers skip the test with a message that
// names the variable and `make test`.
package testinfra

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/dddkit/dddkit/dddkittest"
)

// EnvKafkaBrokers is the environment variable the Kafka helpers read.
const EnvKafkaBrokers = "TEST_KAFKA_BROKERS"

// KafkaVersion is the protocol version the tests speak to the broker. Kafka
// 4 brokers no longer accept the 1.0 protocol sarama defaults to.
var KafkaVersion = sarama.V3_6_0_0

// KafkaBrokers returns the brokers of TEST_KAFKA_BROKERS or skips the test.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	v := os.Getenv(EnvKafkaBrokers)
	if v == "" {
		t.Skipf("skipping: needs Kafka; set %s (make test starts a broker and sets it)", EnvKafkaBrokers)
	}
	return strings.Split(v, ",")
}

// SaramaConfig returns a sarama configuration for the test broker: the
// pinned protocol version and a client ID naming the test.
func SaramaConfig(t testing.TB) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = KafkaVersion
	cfg.ClientID = "dddkit-test"
	return cfg
}

// Topic creates a topic of the test's own with the given number of
// partitions and deletes it when the test ends.
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
	admin, err := sarama.NewClusterAdmin(KafkaBrokers(t), SaramaConfig(t))
	if err != nil {
		t.Fatalf("testinfra: kafka admin: %v", err)
	}
	for _, name := range names {
		if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
			_ = admin.Close()
			t.Fatalf("testinfra: create topic %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		defer admin.Close()
		for _, name := range names {
			if err := admin.DeleteTopic(name); err != nil {
				t.Logf("testinfra: delete topic %s: %v", name, err)
			}
		}
	})
	// A busy broker answers CreateTopic before every partition has a
	// leader; a producer that comes too soon fails.
	Eventually(t, 30*time.Second, func() bool {
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
	}, "topics %v have no leaders", names)
}

// TopicName returns a unique topic name for a topic that the code under
// test creates (topic provisioning); the topic is deleted when the test
// ends, if it exists by then. The test broker does not create topics on
// first use (auto.create.topics.enable=false), so nothing else does.
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
	brokers := KafkaBrokers(t)
	t.Cleanup(func() {
		admin, err := sarama.NewClusterAdmin(brokers, SaramaConfig(t))
		if err != nil {
			t.Logf("testinfra: kafka admin: %v", err)
			return
		}
		defer admin.Close()
		for _, name := range names {
			if err := admin.DeleteTopic(name); err != nil && !errors.Is(err, sarama.ErrUnknownTopicOrPartition) {
				t.Logf("testinfra: delete topic %s: %v", name, err)
			}
		}
	})
}

// Eventually polls cond every 10ms until it returns true or timeout
// passes, then fails the test with msg. It is for waiting on asynchronous
// effects (a message consumed, a row published), not for timing goals.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testinfra: gave up after %s: %s", timeout, fmt.Sprintf(msg, args...))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
