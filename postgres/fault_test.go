package postgres_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testbroker"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/postgres"
)

// The fault test runs the relay in a child process: the test binary
// re-executed with these variables set, which TestMain recognises.
const (
	envChild        = "DDDKIT_OUTBOX_CHILD_RELAY"
	envChildSchema  = "DDDKIT_OUTBOX_CHILD_SCHEMA"
	envChildBrokers = "DDDKIT_OUTBOX_CHILD_BROKERS"
	envChildTopic   = "DDDKIT_OUTBOX_CHILD_TOPIC"
	envChildBatch   = "DDDKIT_OUTBOX_CHILD_BATCH" // the relay's BatchSize; unset: the default
)

// runChild runs the child relay and exits when this process is one.
func runChild() bool {
	return testinfra.RunChild(envChild, func(string) error { return childRelay() })
}

// childRelay is one replica of a service's relay: PostgreSQL outbox →
// the producer of a kafka.Client, until SIGTERM.
func childRelay() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	schema := os.Getenv(envChildSchema)
	cfg, err := pgxpool.ParseConfig(os.Getenv(pgtest.EnvDatabaseURL))
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	client, err := kafka.NewClient(&kafka.Config{Brokers: []string{os.Getenv(envChildBrokers)}})
	if err != nil {
		return err
	}
	defer client.Close()
	topic := os.Getenv(envChildTopic)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(string) string { return topic }})
	ob, err := postgres.NewOutbox(pool, reg, &postgres.OutboxConfig{LeaderPollInterval: 100 * time.Millisecond, Logger: log})
	if err != nil {
		return err
	}
	batch, _ := strconv.Atoi(os.Getenv(envChildBatch))
	relay, err := outbox.NewRelay(ob, client.Publisher(), reg, &outbox.RelayConfig{
		BatchSize: batch,
		Logger:    log,
		Hooks: outbox.Hooks{OnAttemptFailed: func(f outbox.AttemptFailure) {
			log.Warn("attempt failed", "aggregate", f.Event.AggregateID, "version", f.Event.Version, "attempts", f.Attempts, "final", f.Final)
		}},
	})
	if err != nil {
		return err
	}
	return relay.Run(ctx)
}

// faultPause is how long the fault test keeps the broker down; 0 unless
// DDDKIT_FAULT_BROKER_PAUSE (a Go duration) says otherwise.
func faultPause() time.Duration {
	d, _ := time.ParseDuration(os.Getenv("DDDKIT_FAULT_BROKER_PAUSE"))
	return d
}

func startChild(t testing.TB, logPath string, env ...string) *testinfra.Child {
	t.Helper()
	return testinfra.StartChild(t, logPath, append([]string{envChild + "=1"}, env...)...)
}

// TestFaultRelayKilledAndBrokerRestarted relays 24,000 events (1,200
// aggregates × 20) from a relay in a child process to a private Kafka
// broker while the test SIGKILLs the relay twice in the middle of its
// batches (restarting it each time) and restarts the broker once.
// Afterwards every event is in Kafka, every aggregate's events in order;
// duplicates (at-least-once) are counted and reported.
func TestFaultRelayKilledAndBrokerRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the fault test in -short mode")
	}
	t.Parallel()
	b := newOutboxBundle(t, nil)
	broker := testbroker.Start(t)
	topic := "fault-" + dddkittest.UniqueSuffix()
	broker.CreateTopic(topic, 6)

	logPath := filepath.Join(t.TempDir(), "child.log")
	childEnv := []string{envChildSchema + "=" + b.schema, envChildBrokers + "=" + broker.Addr, envChildTopic + "=" + topic}
	child := startChild(t, logPath, childEnv...)
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("child relay log:\n%s", log)
		}
	})

	const aggregates, versions = 1200, 20
	events := cartHistory(aggregates, versions)
	var written atomic.Int64
	ctx := context.Background()
	pending := func() int64 {
		var n int64
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM dddkit_outbox`).Scan(&n))
		return n
	}
	published := func() int64 { return written.Load() - pending() }

	wg := writePaced(t, b.ob, events, &written)

	// killAt waits for progress and a backlog (so the relay is busy),
	// then SIGKILLs the child relay and starts a new one.
	killAt := func(after int64) {
		testinfra.Eventually(t, 60*time.Second, func() bool { return published() >= after && pending() >= 100 }, "progress to %d with a backlog", after)
		_ = child.Stop(syscall.SIGKILL)
		t.Logf("SIGKILLed the relay at %d published, %d pending", published(), pending())
		child = startChild(t, logPath, childEnv...)
	}

	start := time.Now()
	killAt(3000)
	testinfra.Eventually(t, 60*time.Second, func() bool { return published() >= 8000 }, "progress to 8000")
	down := broker.Restart(faultPause())
	t.Logf("restarted the broker at %d published: down for %s, %d pending", published(), down.Round(time.Millisecond), pending())
	killAt(14000)
	wg.Wait()
	testinfra.Eventually(t, 120*time.Second, func() bool { return pending() == 0 }, "outbox drained")
	took := time.Since(start)
	require.NoError(t, child.Stop(syscall.SIGTERM), "relay stops cleanly on SIGTERM")

	got := kafkatest.ReadAll(t, []string{broker.Addr}, topic)
	check := outboxtest.NewOrderCheck()
	for _, m := range got {
		v, err := strconv.ParseInt(m.Headers[wire.HeaderAggregateVersion], 10, 64)
		require.NoError(t, err)
		check.Add(m.Headers[wire.HeaderAggregateID], v, m.Headers[wire.HeaderEventID])
	}
	require.NoError(t, check.Complete(aggregates, versions))
	t.Logf("%d events through 2 relay kills and 1 broker restart in %s: %d records in Kafka, %d duplicates, none lost, order kept",
		len(events), took.Round(time.Millisecond), len(got), check.Duplicates())
	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	t.Logf("child relay log: %d failed publish attempts recorded, %d relay errors retried, %d leader sessions",
		bytes.Count(log, []byte("attempt failed")), bytes.Count(log, []byte("relay error")), bytes.Count(log, []byte("relay is the leader")))
}

// writePaced writes events into ob from two writers (each the aggregates
// of its parity, in order), paced at roughly 4,000 events/s in writes of
// 250, counting what it wrote in written. Wait on the group returned.
// Each write is a burst of more rows than the fault tests wait for as a
// backlog: relays that keep up with the rate (a fast machine) still have
// one for a few milliseconds after each write.
func writePaced(t *testing.T, ob *postgres.Outbox, events []aggregate.Envelope, written *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			var mine []aggregate.Envelope
			for _, e := range events {
				if n, _ := strconv.Atoi(e.AggregateID[1:]); n%2 == w {
					mine = append(mine, e)
				}
			}
			tick := time.NewTicker(125 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < len(mine); i += 250 {
				chunk := mine[i:min(i+250, len(mine))]
				if err := ob.Write(context.Background(), chunk...); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				written.Add(int64(len(chunk)))
				<-tick.C
			}
		})
	}
	return &wg
}
