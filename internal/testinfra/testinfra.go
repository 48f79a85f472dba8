// Package testinfra gives tests their own piece of the real services that
// `make test` starts (see scripts/testenv.sh): a PostgreSQL schema and Kafka
// topics that belong to one test and are dropped when it ends, so tests can
// run in parallel against one server.
//
// Without TEST_DATABASE_URL or TEST_KAFKA_BROKERS the helpers skip the test
// with a message that names the variable and `make test`.
package testinfra

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Environment variables read by the helpers.
const (
	EnvDatabaseURL  = "TEST_DATABASE_URL"
	EnvKafkaBrokers = "TEST_KAFKA_BROKERS"
)

// KafkaVersion is the protocol version the tests speak to the broker. Kafka
// 4 brokers no longer accept the 1.0 protocol sarama defaults to.
var KafkaVersion = sarama.V3_6_0_0

// DatabaseURL returns TEST_DATABASE_URL or skips the test.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv(EnvDatabaseURL)
	if url == "" {
		t.Skipf("skipping: needs PostgreSQL; set %s (make test starts a server and sets it)", EnvDatabaseURL)
	}
	return url
}

// KafkaBrokers returns the brokers of TEST_KAFKA_BROKERS or skips the test.
func KafkaBrokers(t testing.TB) []string {
	t.Helper()
	v := os.Getenv(EnvKafkaBrokers)
	if v == "" {
		t.Skipf("skipping: needs Kafka; set %s (make test starts a broker and sets it)", EnvKafkaBrokers)
	}
	return strings.Split(v, ",")
}

// Suffix returns a short random lower-case hex string for unique names.
func Suffix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// Name returns a unique identifier derived from the test's name: lower
// case, [a-z0-9_], at most 40 characters, safe as a schema or topic name.
func Name(t testing.TB) string {
	base := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(base) > 28 {
		base = base[len(base)-28:]
	}
	return strings.Trim("t_"+base, "_") + "_" + Suffix()
}

// SchemaURL creates a schema of the test's own, dropped when the test
// ends, and returns a connection URL whose search_path is that schema
// (for code under test that takes a URL, such as a service's config).
func SchemaURL(t testing.TB) (dbURL, schema string) {
	t.Helper()
	base := DatabaseURL(t)
	schema = Name(t)
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("testinfra: create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + pgx.Identifier{schema}.Sanitize() + " CASCADE"); err != nil {
			t.Errorf("testinfra: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		t.Fatalf("testinfra: %s must be a postgres:// URL", EnvDatabaseURL)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}

// Schema creates a schema of the test's own and returns a pool whose
// connections use it as search_path; the schema is dropped when the test
// ends. Tables created without a schema prefix land in it.
func Schema(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL, schema := SchemaURL(t)
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("testinfra: parse %s: %v", EnvDatabaseURL, err)
	}
	cfg.MaxConns = 8
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testinfra: pool: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the schema is dropped
	return pool, schema
}

// Pool is [Schema] for tests that only need the pool.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, _ := Schema(t)
	return pool
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
	name := strings.ReplaceAll(Name(t), "_", "-")
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
}

// TopicName returns a unique topic name for a topic that the code under
// test creates (topic provisioning); the topic is deleted when the test
// ends, if it exists by then. The test broker does not create topics on
// first use (auto.create.topics.enable=false), so nothing else does.
func TopicName(t testing.TB) string {
	t.Helper()
	name := strings.ReplaceAll(Name(t), "_", "-")
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
