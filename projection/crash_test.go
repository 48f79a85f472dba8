package projection_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/projection"
	"github.com/dddkit/dddkit/projection/projectiontest"
)

// The crash tests run a projection in a child process: the test binary
// re-executed with these variables set, which TestMain recognises.
const (
	envChild        = "DDDKIT_PROJECTION_CHILD" // the source: "kafka" or "stream"
	envChildSchema  = "DDDKIT_PROJECTION_CHILD_SCHEMA"
	envChildBrokers = "DDDKIT_PROJECTION_CHILD_BROKERS"
	envChildTopic   = "DDDKIT_PROJECTION_CHILD_TOPIC"
)

// crashReadModel is the read model of the crash tests: a row per event
// with the number of times it was applied (an upsert counts a second
// application instead of failing on it) and the order of application.
func readModelSQL(table string) string {
	return `CREATE TABLE ` + table + ` (
	event_id     text   PRIMARY KEY,
	aggregate_id text   NOT NULL,
	version      bigint NOT NULL,
	applied      int    NOT NULL DEFAULT 1,
	seq          bigint GENERATED ALWAYS AS IDENTITY)`
}

// countInto is a projection handler that counts env into the read model
// table (see readModelSQL), queued in the batch's transaction.
func countInto(table string) func(ctx context.Context, env aggregate.Envelope) error {
	return func(ctx context.Context, env aggregate.Envelope) error {
		return postgres.QueueExec(ctx, `INSERT INTO `+table+` (event_id, aggregate_id, version) VALUES ($1, $2, $3)
			ON CONFLICT (event_id) DO UPDATE SET applied = `+table+`.applied + 1`, env.ID, env.AggregateID, env.Version)
	}
}

// resetTable is a projection's OnReset handler that empties table.
func resetTable(table string) func(ctx context.Context) error {
	return func(ctx context.Context) error { return postgres.QueueExec(ctx, `DELETE FROM `+table) }
}

// crashProjection is the projection the child runs: it counts each event
// into crash_rm in the batch's transaction.
func crashProjection(reg *eventbus.Registry) (*projection.Projection, error) {
	p, err := projection.New("crash", reg)
	if err != nil {
		return nil, err
	}
	apply := countInto("crash_rm")
	err = errors.Join(
		projection.On(p, func(ctx context.Context, _ projectiontest.Counted, env aggregate.Envelope) error {
			return apply(ctx, env)
		}),
		projection.On(p, func(ctx context.Context, _ projectiontest.Reset, env aggregate.Envelope) error {
			return apply(ctx, env)
		}),
	)
	p.OnReset(resetTable("crash_rm"))
	return p, err
}

// crashRegistry is the suite's registry, every event on topic.
func crashRegistry(topic string) (*eventbus.Registry, error) {
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(string) string { return topic }})
	return reg, errors.Join(
		eventbus.Register[projectiontest.Counted](reg, eventbus.AggregateType(projectiontest.AggregateType)),
		eventbus.Register[projectiontest.Reset](reg, eventbus.AggregateType(projectiontest.AggregateType)),
		eventbus.Register[projectiontest.Ignored](reg, eventbus.AggregateType(projectiontest.AggregateType)),
	)
}

// runChild runs the child projection and exits when this process is one.
func runChild() bool { return testinfra.RunChild(envChild, childProjection) }

func childProjection(source string) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := pgxpool.ParseConfig(os.Getenv(pgtest.EnvDatabaseURL))
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = os.Getenv(envChildSchema)
	cfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg, err := crashRegistry(os.Getenv(envChildTopic))
	if err != nil {
		return err
	}
	p, err := crashProjection(reg)
	if err != nil {
		return err
	}
	switch source {
	case "kafka":
		client, err := kafka.NewClient(&kafka.Config{
			Brokers: []string{os.Getenv(envChildBrokers)}, CommitInterval: 100 * time.Millisecond, Logger: log,
		})
		if err != nil {
			return err
		}
		defer client.Close()
		inbox, err := postgres.NewInbox(pool, &postgres.InboxConfig{Logger: log})
		if err != nil {
			return err
		}
		store, err := postgres.NewProjectionStore(pool, nil)
		if err != nil {
			return err
		}
		r, err := eventbus.NewRouter(client, reg, &eventbus.RouterConfig{MaxBatch: 200, Logger: log})
		if err != nil {
			return err
		}
		if err := p.Subscribe(r, inbox, store); err != nil {
			return err
		}
		return r.Run(ctx)
	case "stream":
		return childStream(ctx, pool, reg, p, log)
	}
	return fmt.Errorf("unknown source %q", source)
}

// crashBundle is the parent's side of a crash test.
type crashBundle struct {
	pool   *pgxpool.Pool
	schema string
	log    string
}

func setupCrash(t *testing.T) *crashBundle {
	t.Helper()
	pool, schema := pgtest.Schema(t)
	ctx := context.Background()
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	_, err := pool.Exec(ctx, readModelSQL("crash_rm"))
	require.NoError(t, err)
	b := &crashBundle{pool: pool, schema: schema, log: filepath.Join(t.TempDir(), "child.log")}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(b.log)
			t.Logf("child log:\n%s", log)
		}
	})
	return b
}

// applied returns how many events the read model has.
func (b *crashBundle) applied(t *testing.T) int64 {
	var n int64
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM crash_rm`).Scan(&n))
	return n
}

// killAndRestart SIGKILLs the child when the read model has at least
// after events, several times, and then waits until it has all of want
// and stops the last child with SIGTERM.
func (b *crashBundle) killAndRestart(t *testing.T, env []string, want int64, kills ...int64) {
	t.Helper()
	child := testinfra.StartChild(t, b.log, env...)
	for _, at := range kills {
		testinfra.Eventually(t, 120*time.Second, func() bool { return b.applied(t) >= at }, "progress to %d", at)
		_ = child.Stop(syscall.SIGKILL)
		t.Logf("SIGKILLed the projection at %d events applied", b.applied(t))
		child = testinfra.StartChild(t, b.log, env...)
	}
	testinfra.Eventually(t, 180*time.Second, func() bool { return b.applied(t) >= want }, "all %d events applied", want)
	require.NoError(t, child.Stop(syscall.SIGTERM), "child stops cleanly on SIGTERM")
}

// check asserts that the read model has every handled event of envs
// exactly once and each aggregate's events in order.
func (b *crashBundle) check(t *testing.T, envs []aggregate.Envelope) {
	t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `SELECT event_id, aggregate_id, version, applied FROM crash_rm ORDER BY seq`)
	require.NoError(t, err)
	defer rows.Close()
	counts := map[string]int{}
	order := map[string][]int64{}
	twice := 0
	for rows.Next() {
		var id, agg string
		var v int64
		var n int
		require.NoError(t, rows.Scan(&id, &agg, &v, &n))
		counts[id] = n
		if n != 1 {
			twice++
		}
		order[agg] = append(order[agg], v)
	}
	require.NoError(t, rows.Err())
	lost, want := 0, 0
	for _, e := range envs {
		if e.Name == (projectiontest.Ignored{}).EventName() {
			continue
		}
		want++
		if counts[e.ID] == 0 {
			lost++
		}
	}
	unordered := 0
	for _, vs := range order {
		if !slices.IsSorted(vs) {
			unordered++
		}
	}
	t.Logf("%d events handled: %d lost, %d applied more than once, %d aggregates out of order", want, lost, twice, unordered)
	if lost != 0 || twice != 0 || unordered != 0 || len(counts) != want {
		t.Fatalf("read model has %d events, want %d, each once and in order", len(counts), want)
	}
}

// TestCrashKafkaSource runs a projection from Kafka into PostgreSQL in a
// child process over 24,000 events and SIGKILLs it three times in the
// middle of its batches: afterwards every event is applied exactly once,
// each aggregate's in order.
func TestCrashKafkaSource(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the crash test in -short mode")
	}
	t.Parallel()
	b := setupCrash(t)
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, 6)
	reg, err := crashRegistry(topic)
	require.NoError(t, err)

	client, err := kafka.NewClient(&kafka.Config{Brokers: brokers})
	require.NoError(t, err)
	defer client.Close()
	pub, err := eventbus.NewPublisher(client.Publisher(), reg)
	require.NoError(t, err)
	envs := projectiontest.Events(24000, 600, map[string]int64{})
	ctx := context.Background()
	for i := 0; i < len(envs); i += 1000 {
		require.NoError(t, pub.Publish(ctx, envs[i:min(i+1000, len(envs))]...))
	}
	want := int64(0)
	for _, e := range envs {
		if e.Name != (projectiontest.Ignored{}).EventName() {
			want++
		}
	}
	env := []string{envChild + "=kafka", envChildSchema + "=" + b.schema, envChildBrokers + "=" + brokers[0], envChildTopic + "=" + topic}
	b.killAndRestart(t, env, want, 3000, 9000, 15000)
	b.check(t, envs)
}
