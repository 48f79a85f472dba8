package projection_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/projection"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// counterRegistry registers the events of repositorytest.Counter, the
// aggregate the stream tests store.
func counterRegistry() (*eventbus.Registry, error) {
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test"})
	at := eventbus.AggregateType(repositorytest.CounterType)
	return reg, errors.Join(
		eventbus.Register[repositorytest.CounterCreated](reg, at),
		eventbus.Register[repositorytest.CounterAdded](reg, at),
		eventbus.Register[repositorytest.CounterRenamed](reg, at),
	)
}

// counterProjection counts the creations and additions of counters into
// table (not the renames).
func counterProjection(name, table string, reg *eventbus.Registry) (*projection.Projection, error) {
	p, err := projection.New(name, reg)
	if err != nil {
		return nil, err
	}
	apply := countInto(table)
	p.OnReset(resetTable(table))
	return p, errors.Join(
		projection.On(p, func(ctx context.Context, _ repositorytest.CounterCreated, env aggregate.Envelope) error {
			return apply(ctx, env)
		}),
		projection.On(p, func(ctx context.Context, _ repositorytest.CounterAdded, env aggregate.Envelope) error {
			return apply(ctx, env)
		}),
	)
}

// childStream runs the crash projection on the event store's stream.
func childStream(ctx context.Context, pool *pgxpool.Pool, _ *eventbus.Registry, _ *projection.Projection, log *slog.Logger) error {
	reg, err := counterRegistry()
	if err != nil {
		return err
	}
	p, err := counterProjection("crash", "crash_rm", reg)
	if err != nil {
		return err
	}
	stream, err := postgres.NewEventStream(pool, reg, &postgres.EventStreamConfig{Logger: log})
	if err != nil {
		return err
	}
	defer stream.Close()
	store, err := postgres.NewProjectionStore(pool, nil)
	if err != nil {
		return err
	}
	r, err := projection.NewRunner(p, stream, store, &projection.RunnerConfig{BatchSize: 200, Logger: log})
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// writeCounters saves counters from..to-1 of the test, each with a
// creation, adds additions and a rename, one transaction per counter.
func writeCounters(ctx context.Context, pool *pgxpool.Pool, reg *eventbus.Registry, from, to, adds int) error {
	ob, err := postgres.NewOutbox(pool, reg, nil)
	if err != nil {
		return err
	}
	store, err := postgres.NewEventStore(pool, ob, repositorytest.EventMapping(), nil)
	if err != nil {
		return err
	}
	for i := from; i < to; i++ {
		c, err := repositorytest.NewCounter(fmt.Sprintf("c%05d", i), fmt.Sprintf("counter %d", i))
		if err != nil {
			return err
		}
		for range adds {
			if err := c.Add(1); err != nil {
				return err
			}
		}
		if err := c.Rename("renamed"); err != nil {
			return err
		}
		if err := store.Save(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// handledEvents returns the IDs, aggregates and versions of the events
// the counter projection handles, from the events table.
func handledEvents(t *testing.T, pool *pgxpool.Pool) []aggregate.Envelope {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT event_id, id, version FROM aggregate_events
		WHERE name <> $1 ORDER BY position`, repositorytest.CounterRenamed{}.EventName())
	require.NoError(t, err)
	defer rows.Close()
	var out []aggregate.Envelope
	for rows.Next() {
		var e aggregate.Envelope
		require.NoError(t, rows.Scan(&e.ID, &e.AggregateID, &e.Version))
		out = append(out, e)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestCrashStreamSource runs a projection of the PostgreSQL event store's
// stream in a child process while 23,100 events are written (1,100
// counters × 21 events, 20 of them handled), and SIGKILLs it three times
// in the middle of its batches: afterwards every event is applied
// exactly once, each aggregate's in order.
func TestCrashStreamSource(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the crash test in -short mode")
	}
	t.Parallel()
	b := setupCrash(t)
	reg, err := counterRegistry()
	require.NoError(t, err)
	const counters, adds = 1100, 19
	var wg sync.WaitGroup
	ctx := context.Background()
	wg.Go(func() {
		if err := writeCounters(ctx, b.pool, reg, 0, counters, adds); err != nil {
			t.Errorf("write: %v", err)
		}
	})
	env := []string{envChild + "=stream", envChildSchema + "=" + b.schema}
	b.killAndRestart(t, env, counters*(adds+1), 3000, 9000, 15000)
	wg.Wait()
	b.check(t, handledEvents(t, b.pool))
}

// A rebuild on PostgreSQL while writes continue and another runner
// follows the stream ends equal to a fresh build.
func TestRebuildWhileWritingPostgres(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool := pgtest.Pool(t)
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	for _, table := range []string{"live_rm", "fresh_rm"} {
		_, err := pool.Exec(ctx, readModelSQL(table))
		require.NoError(t, err)
	}
	reg, err := counterRegistry()
	require.NoError(t, err)
	require.NoError(t, writeCounters(ctx, pool, reg, 0, 200, 9))

	stream, err := postgres.NewEventStream(pool, reg, nil)
	require.NoError(t, err)
	defer stream.Close()
	store, err := postgres.NewProjectionStore(pool, nil)
	require.NoError(t, err)
	quiet := &projection.RunnerConfig{BatchSize: 64, Logger: slog.New(slog.DiscardHandler)}
	live, err := counterProjection("live", "live_rm", reg)
	require.NoError(t, err)
	runner, err := projection.NewRunner(live, stream, store, quiet)
	require.NoError(t, err)
	require.NoError(t, runner.CatchUp(ctx))

	// A follower runs, a writer writes, and the runner rebuilds.
	runCtx, stop := context.WithCancel(ctx)
	var follower, writer sync.WaitGroup
	follower.Go(func() {
		r, err := projection.NewRunner(live, stream, store, quiet)
		if err == nil {
			err = r.Run(runCtx)
		}
		if err != nil {
			t.Errorf("follower: %v", err)
		}
	})
	writer.Go(func() {
		if err := writeCounters(ctx, pool, reg, 200, 400, 9); err != nil {
			t.Errorf("write: %v", err)
		}
	})
	var progress []projection.Progress
	require.NoError(t, runner.Rebuild(ctx, func(p projection.Progress) { progress = append(progress, p) }))
	writer.Wait()
	require.NoError(t, runner.CatchUp(ctx))
	stop()
	follower.Wait()
	require.NotEmpty(t, progress)
	require.True(t, slices.IsSortedFunc(progress, func(a, b projection.Progress) int { return int(a.Position - b.Position) }))

	fresh, err := counterProjection("fresh", "fresh_rm", reg)
	require.NoError(t, err)
	fr, err := projection.NewRunner(fresh, stream, store, quiet)
	require.NoError(t, err)
	require.NoError(t, fr.CatchUp(ctx))

	want := handledEvents(t, pool)
	require.Len(t, want, 400*10)
	liveRows := readModelRows(t, pool, "live_rm")
	require.Equal(t, readModelRows(t, pool, "fresh_rm"), liveRows, "rebuilt read model equals a fresh build")
	require.Len(t, liveRows, len(want))
	for _, e := range want {
		require.Equal(t, 1, liveRows[e.ID], "event %s", e.ID)
	}
	st, err := runner.Status(ctx)
	require.NoError(t, err)
	require.False(t, st.Rebuilding)
	require.Zero(t, st.LagEvents)
	require.Equal(t, int64(len(want)), st.Applied)
}

// readModelRows returns how often each event was applied to table.
func readModelRows(t *testing.T, pool *pgxpool.Pool, table string) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT event_id, applied FROM `+table)
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		require.NoError(t, rows.Scan(&id, &n))
		out[id] = n
	}
	require.NoError(t, rows.Err())
	return out
}
