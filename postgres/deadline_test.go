package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
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
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/postgres"
)

// The deadline restart test schedules in a child process: the test
// binary re-executed with these variables set, which TestMain
// recognises.
const (
	envDeadlineChild   = "DDDKIT_DEADLINE_CHILD"
	envDeadlineSchema  = "DDDKIT_DEADLINE_SCHEMA"
	envDeadlineBrokers = "DDDKIT_DEADLINE_BROKERS"
	envDeadlineTopic   = "DDDKIT_DEADLINE_TOPIC"
	envDeadlineDue     = "DDDKIT_DEADLINE_DUE"
)

// reminderDue is the deadline of the restart test.
type reminderDue struct{ Key string }

func (reminderDue) EventName() string { return "test.reminder_due" }

func reminderRegistry(topic string) (*eventbus.Registry, error) {
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(string) string { return topic }})
	return reg, eventbus.Register[reminderDue](reg, eventbus.AggregateType("reminder"))
}

// runDeadlineChild runs the scheduling child and exits when this
// process is one.
func runDeadlineChild() bool {
	return testinfra.RunChild(envDeadlineChild, func(string) error { return deadlineChild() })
}

// deadlineChild is a service that runs the relay (it leads) and
// schedules a deadline in a unit of work, then waits to be killed.
func deadlineChild() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	cfg, err := pgxpool.ParseConfig(os.Getenv(pgtest.EnvDatabaseURL))
	if err != nil {
		return err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = os.Getenv(envDeadlineSchema)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	due, err := time.Parse(time.RFC3339Nano, os.Getenv(envDeadlineDue))
	if err != nil {
		return err
	}
	reg, err := reminderRegistry(os.Getenv(envDeadlineTopic))
	if err != nil {
		return err
	}
	client, err := kafka.NewClient(&kafka.Config{Brokers: []string{os.Getenv(envDeadlineBrokers)}})
	if err != nil {
		return err
	}
	defer client.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ob, err := postgres.NewOutbox(pool, reg, &postgres.OutboxConfig{Logger: log})
	if err != nil {
		return err
	}
	relay, err := outbox.NewRelay(ob, client.Publisher(), reg, &outbox.RelayConfig{Logger: log})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { _ = relay.Run(ctx) })
	for !relay.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	uow, err := postgres.NewUnitOfWork(pool)
	if err != nil {
		return err
	}
	// As an event handler would: the context carries the event's
	// correlation and the event as causation.
	hctx := aggregate.ContextWithMetadata(ctx, aggregate.Metadata{CorrelationID: "corr-restart", CausationID: "evt-cause"})
	if err := uow.Do(hctx, func(ctx context.Context) error {
		return ob.Schedule(ctx, "reminder/1", due, reminderDue{Key: "reminder/1"})
	}); err != nil {
		return err
	}
	fmt.Println("scheduled")
	<-ctx.Done()
	return nil
}

// TestDeadlineSurvivesRestart: a service schedules a deadline (in a
// child process, which also leads the relay) and is SIGKILLed before it
// is due. Another process runs the relay and a consumer with an inbox:
// after the due time the deadline fires, the handler runs exactly once
// (a redelivery is dropped by the inbox), with the metadata of the
// scheduling context.
func TestDeadlineSurvivesRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	brokers := kafkatest.Brokers(t)
	pool, schema := pgtest.Schema(t)
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	topic, deadLetters := kafkatest.Topic(t, 1), dddkittest.UniqueName(t)+"-dlq"
	kafkatest.Topics(t, 1, deadLetters)
	_, err := pool.Exec(ctx, `CREATE TABLE fired (event_id text PRIMARY KEY, key text NOT NULL, handled_at timestamptz NOT NULL DEFAULT clock_timestamp())`)
	require.NoError(t, err)

	due := time.Now().Add(4 * time.Second).UTC().Truncate(time.Microsecond)
	logPath := filepath.Join(t.TempDir(), "child.log")
	child := testinfra.StartChild(t, logPath, envDeadlineChild+"=1", envDeadlineSchema+"="+schema, envDeadlineBrokers+"="+brokers[0],
		envDeadlineTopic+"="+topic, envDeadlineDue+"="+due.Format(time.RFC3339Nano))
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("child log:\n%s", log)
		}
	})

	scheduled := func() int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM dddkit_outbox WHERE status = 'scheduled'`).Scan(&n))
		return n
	}
	testinfra.Eventually(t, 30*time.Second, func() bool { return scheduled() == 1 }, "the child's deadline")
	require.Error(t, child.Stop(syscall.SIGKILL), "the child was killed")
	require.True(t, time.Now().Before(due), "the child was killed before the deadline was due (raise the margin if the machine is this slow)")
	require.Equal(t, 1, scheduled(), "the deadline outlived the process that scheduled it")

	// Another replica: relay and consumer.
	reg, err := reminderRegistry(topic)
	require.NoError(t, err)
	ob, err := postgres.NewOutbox(pool, reg, &postgres.OutboxConfig{LeaderPollInterval: 100 * time.Millisecond})
	require.NoError(t, err)
	client, err := kafka.NewClient(&kafka.Config{Brokers: brokers, Logger: discardLogger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	relay, err := outbox.NewRelay(ob, client.Publisher(), reg, &outbox.RelayConfig{Logger: discardLogger})
	require.NoError(t, err)
	outboxtest.Start(t, relay, 30*time.Second)
	inbox, err := postgres.NewInbox(pool, nil)
	require.NoError(t, err)
	r, err := eventbus.NewRouter(client, reg, &eventbus.RouterConfig{Logger: discardLogger, DeadLetterTopic: deadLetters})
	require.NoError(t, err)
	var (
		mu   sync.Mutex
		runs []aggregate.Envelope
	)
	require.NoError(t, eventbus.HandleOnce(r, "reminders", inbox, func(ctx context.Context, e reminderDue, env aggregate.Envelope) error {
		tx, _ := postgres.TxFromContext(ctx)
		if _, err := tx.Exec(ctx, `INSERT INTO fired (event_id, key) VALUES ($1, $2)`, env.ID, e.Key); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, env)
		return nil
	}))
	startRouter(t, r)
	handled := func(key string) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM fired WHERE key = $1`, key).Scan(&n))
		return n
	}
	testinfra.Eventually(t, 60*time.Second, func() bool { return handled("reminder/1") == 1 }, "the deadline handled")

	mu.Lock()
	fired := runs[0]
	mu.Unlock()
	var handledAt time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT handled_at FROM fired WHERE key = 'reminder/1'`).Scan(&handledAt))
	require.False(t, handledAt.Before(due), "handled at %s, before the due time %s", handledAt, due)
	require.True(t, fired.OccurredAt.Equal(due), "occurred at %s, want the due time %s", fired.OccurredAt, due)
	require.Equal(t, "reminder/1", fired.AggregateID)
	require.Equal(t, "corr-restart", fired.Metadata.CorrelationID)
	require.Equal(t, "evt-cause", fired.Metadata.CausationID)

	// A redelivery of the fired message, then a second deadline behind
	// it on the one partition: once the second is handled, the
	// redelivery was seen, and dropped.
	pub, err := eventbus.NewPublisher(client.Publisher(), reg)
	require.NoError(t, err)
	again := fired
	again.Payload = reminderDue{Key: "reminder/1"}
	require.NoError(t, pub.Publish(ctx, again))
	require.NoError(t, ob.Schedule(ctx, "reminder/2", time.Now(), reminderDue{Key: "reminder/2"}))
	testinfra.Eventually(t, 60*time.Second, func() bool { return handled("reminder/2") == 1 }, "the second deadline handled")
	require.Equal(t, 1, handled("reminder/1"), "the deadline was handled once")
	mu.Lock()
	require.Len(t, runs, 2, "handler runs")
	mu.Unlock()
}

// startRouter runs r until the test ends.
func startRouter(t *testing.T, r *eventbus.Router) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case <-r.Running():
	case err := <-done:
		t.Fatalf("router stopped: %v", err)
	}
	t.Cleanup(func() {
		_ = r.Close()
		<-done
	})
}

// Schedule and Cancel join the unit of work in ctx: a rollback undoes
// them. Scheduled rows are listed with their due time and key; two
// transactions scheduling one key at once conflict; a key can be
// scheduled again after it fired, also while its published row is kept.
func TestOutboxScheduleInUnitOfWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := pgtest.Schema(t)
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	reg, err := reminderRegistry("reminders")
	require.NoError(t, err)
	ob, err := postgres.NewOutbox(pool, reg, &postgres.OutboxConfig{Retention: time.Hour})
	require.NoError(t, err)
	uow, err := postgres.NewUnitOfWork(pool)
	require.NoError(t, err)
	due := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	rollback := errors.New("rollback")

	err = uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, ob.Schedule(ctx, "k", due, reminderDue{Key: "k"}))
		return rollback
	})
	require.ErrorIs(t, err, rollback)
	st, err := ob.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, st.Scheduled, "a rolled-back Schedule left a row")

	require.NoError(t, uow.Do(ctx, func(ctx context.Context) error {
		return ob.Schedule(aggregate.ContextWithMetadata(ctx, aggregate.Metadata{CorrelationID: "c"}), "k", due, reminderDue{Key: "k"})
	}))
	recs, err := ob.List(ctx, outbox.StatusScheduled, 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "k", recs[0].ScheduleKey)
	require.True(t, recs[0].DueAt.Equal(due), "due %s, want %s", recs[0].DueAt, due)
	require.Equal(t, "c", recs[0].Event.Metadata.CorrelationID)

	err = uow.Do(ctx, func(ctx context.Context) error {
		ok, err := ob.Cancel(ctx, "k")
		require.NoError(t, err)
		require.True(t, ok)
		return rollback
	})
	require.ErrorIs(t, err, rollback)
	st, err = ob.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), st.Scheduled, "a rolled-back Cancel removed the row")

	// Two transactions schedule "race" at once: the second waits for the
	// first and then conflicts.
	tx1, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx1.Rollback(ctx) }()
	uow1, err := postgres.NewUnitOfWork(tx1)
	require.NoError(t, err)
	require.NoError(t, uow1.Do(ctx, func(ctx context.Context) error {
		return ob.Schedule(ctx, "race", due, reminderDue{Key: "race"})
	}))
	second := make(chan error, 1)
	go func() { second <- ob.Schedule(ctx, "race", due, reminderDue{Key: "race"}) }()
	// The second blocks in its UPDATE on the first's uncommitted key.
	testinfra.Eventually(t, 30*time.Second, func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE 'UPDATE %schedule_key = $3%' AND query LIKE '%' || current_schema() || '%'`).Scan(&n))
		return n == 1
	}, "the second Schedule waiting for the first")
	require.NoError(t, tx1.Commit(ctx))
	require.ErrorIs(t, <-second, aggregate.ErrConcurrencyConflict)

	// Fired (published and kept for an hour), then scheduled again.
	require.NoError(t, ob.Schedule(ctx, "again", time.Now().Add(-time.Second), reminderDue{Key: "again"}))
	relay, err := outbox.NewRelay(ob, &outboxtest.Recorder{}, reg, nil)
	require.NoError(t, err)
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.NoError(t, ob.Schedule(ctx, "again", due, reminderDue{Key: "again"}))
	recs, err = ob.List(ctx, outbox.StatusPublished, 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, "again", recs[0].ScheduleKey)
}
