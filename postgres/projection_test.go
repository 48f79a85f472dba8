package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/projection"
	"github.com/dddkit/dddkit/projection/projectiontest"
	"github.com/dddkit/dddkit/retry"
)

func TestProjectionStore(t *testing.T) {
	t.Parallel()
	projectiontest.Run(t, func(t *testing.T) projectiontest.Harness {
		pool := pgtest.Pool(t)
		require.NoError(t, postgres.Migrate(context.Background(), pool, nil))
		store, err := postgres.NewProjectionStore(pool, nil)
		require.NoError(t, err)
		return projectiontest.Harness{
			Store: store,
			NewReadModel: func(t *testing.T, name string) projectiontest.ReadModel {
				return newPGReadModel(t, pool, name)
			},
		}
	})
}

// pgReadModel is the suite's read model in a table: a row per applied
// event, whose primary key refuses a second application, and a
// sequence that records the order.
type pgReadModel struct {
	pool  *pgxpool.Pool
	table string
}

func newPGReadModel(t testing.TB, pool *pgxpool.Pool, name string) *pgReadModel {
	t.Helper()
	table := pgx.Identifier{"rm_" + name}.Sanitize()
	_, err := pool.Exec(context.Background(), `CREATE TABLE `+table+` (
		event_id text PRIMARY KEY, aggregate_id text NOT NULL, version bigint NOT NULL,
		seq bigint GENERATED ALWAYS AS IDENTITY)`)
	require.NoError(t, err)
	return &pgReadModel{pool: pool, table: table}
}

func (m *pgReadModel) Add(ctx context.Context, eventID, aggregateID string, version int64) error {
	return postgres.QueueExec(ctx, `INSERT INTO `+m.table+` (event_id, aggregate_id, version) VALUES ($1, $2, $3)`, eventID, aggregateID, version)
}

func (m *pgReadModel) Clear(ctx context.Context) error {
	tx, ok := postgres.TxFromContext(ctx)
	if !ok {
		return errors.New("no transaction in the reset handler's context")
	}
	_, err := tx.Exec(ctx, `DELETE FROM `+m.table)
	return err
}

func (m *pgReadModel) Applied(ctx context.Context) (map[string]int, map[string][]int64, error) {
	rows, err := m.pool.Query(ctx, `SELECT event_id, aggregate_id, version FROM `+m.table+` ORDER BY seq`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	counts, order := map[string]int{}, map[string][]int64{}
	for rows.Next() {
		var id, agg string
		var v int64
		if err := rows.Scan(&id, &agg, &v); err != nil {
			return nil, nil, err
		}
		counts[id]++
		order[agg] = append(order[agg], v)
	}
	return counts, order, rows.Err()
}

// A queued statement that fails fails its batch: the batch is applied
// one event at a time, the events before the failing one commit, and
// the projection stops at it.
func TestProjectionStoreQueuedStatementFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.Pool(t)
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	_, err := pool.Exec(ctx, `CREATE TABLE rm (event_id text PRIMARY KEY, version bigint NOT NULL CHECK (version <> 5))`)
	require.NoError(t, err)
	store, err := postgres.NewProjectionStore(pool, nil)
	require.NoError(t, err)

	stream := projectiontest.NewStream()
	envs := projectiontest.Events(40, 1, map[string]int64{}) // one aggregate: versions 1..40
	stream.Append(envs...)
	p, err := projection.New("queued", projectiontest.Registry(t))
	require.NoError(t, err)
	require.NoError(t, projection.On(p, func(ctx context.Context, _ projectiontest.Counted, env aggregate.Envelope) error {
		return postgres.QueueExec(ctx, `INSERT INTO rm (event_id, version) VALUES ($1, $2)`, env.ID, env.Version)
	}))
	r, err := projection.NewRunner(p, stream, store, &projection.RunnerConfig{
		BatchSize: 100, Retry: retry.Policy{MaxAttempts: 1}, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	err = r.CatchUp(ctx)
	var perr *projection.Error
	require.ErrorAs(t, err, &perr)
	require.Equal(t, envs[4].ID, perr.EventID, "stopped at version 5")
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM rm`).Scan(&n))
	require.Equal(t, 4, n, "versions 1-4 committed")
	st, err := r.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(4), st.Applied)
	require.Contains(t, st.LastError, "violates check constraint")
}
