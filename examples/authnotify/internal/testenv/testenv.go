// Package testenv gives the example's tests their own piece of the real
// services that `make test` starts: a PostgreSQL schema and Kafka topics
// that belong to one test and are dropped when it ends. It is the
// example's small twin of the library's internal/testinfra, which another
// module cannot import.
//
// Without TEST_DATABASE_URL or TEST_KAFKA_BROKERS the helpers skip the
// test with a message that names the variable and `make test`.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/kafka"
)

// Environment variables read by the helpers.
const (
	EnvDatabaseURL  = "TEST_DATABASE_URL"
	EnvKafkaBrokers = "TEST_KAFKA_BROKERS"
)

// DatabaseURL returns TEST_DATABASE_URL or skips the test.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	v := os.Getenv(EnvDatabaseURL)
	if v == "" {
		t.Skipf("skipping: needs PostgreSQL; set %s (make test starts a server and sets it)", EnvDatabaseURL)
	}
	return v
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

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// Name returns a unique identifier derived from the test's name: lower
// case, [a-z0-9_], at most 40 characters, safe as a schema or topic name.
func Name(t testing.TB) string {
	base := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(base) > 28 {
		base = base[len(base)-28:]
	}
	var b [5]byte
	_, _ = rand.Read(b[:])
	return strings.Trim("t_"+base, "_") + "_" + hex.EncodeToString(b[:])
}

// Schema creates a schema of the test's own, dropped when the test ends,
// and returns TEST_DATABASE_URL with search_path set to it: whatever
// connects with that URL creates and finds its tables there.
func Schema(t testing.TB) (dbURL, schema string) {
	t.Helper()
	base := DatabaseURL(t)
	schema = Name(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("testenv: connect to %s: %v", EnvDatabaseURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("testenv: create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("testenv: drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("testenv: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		t.Fatalf("testenv: %s must be a postgres:// URL", EnvDatabaseURL)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}

// Topics creates the given Kafka topics with partitions partitions each
// and deletes them when the test ends.
func Topics(t testing.TB, partitions int32, names ...string) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = kafka.DefaultVersion // Kafka 4 refuses sarama's old default
	cfg.ClientID = "authnotify-test"
	admin, err := sarama.NewClusterAdmin(KafkaBrokers(t), cfg)
	if err != nil {
		t.Fatalf("testenv: kafka admin: %v", err)
	}
	for _, name := range names {
		if err := admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false); err != nil {
			_ = admin.Close()
			t.Fatalf("testenv: create topic %s: %v", name, err)
		}
	}
	t.Cleanup(func() {
		defer admin.Close()
		for _, name := range names {
			if err := admin.DeleteTopic(name); err != nil {
				t.Logf("testenv: delete topic %s: %v", name, err)
			}
		}
	})
}
