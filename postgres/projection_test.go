package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/projection/projectiontest"
)

func TestProjectionStore(t *testing.T) {
	t.Parallel()
	projectiontest.Run(t, func(t *testing.T) projectiontest.Harness {
		pool := testinfra.Pool(t)
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
	tx, ok := postgres.TxFromContext(ctx)
	if !ok {
		return errors.New("no transaction in the handler's context")
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+m.table+` (event_id, aggregate_id, version) VALUES ($1, $2, $3)`, eventID, aggregateID, version)
	return err
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
