package repository_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
	"github.com/dddkit/dddkit/retry"
)

// pgBundle is a migrated schema of the test's own with an outbox store.
type pgBundle struct {
	pool   *pgxpool.Pool
	schema string
	store  *outbox.Store
	admin  *outbox.Admin
}

func setupPG(t testing.TB) pgBundle {
	t.Helper()
	pool, schema := testinfra.Schema(t)
	ctx := context.Background()
	require.NoError(t, repository.Migrate(ctx, pool, nil))
	require.NoError(t, outbox.Migrate(ctx, pool, nil))
	store, err := outbox.NewStore(nil)
	require.NoError(t, err)
	admin, err := outbox.NewAdmin(pool, nil)
	require.NoError(t, err)
	return pgBundle{pool: pool, schema: schema, store: store, admin: admin}
}

// outboxEvents lists the pending outbox rows in sequence order, through
// the outbox's operator API (payloads nil).
func (b pgBundle) outboxEvents(t testing.TB) []aggregate.Envelope {
	t.Helper()
	recs, err := b.admin.List(context.Background(), outbox.StatusPending, 0, 0)
	require.NoError(t, err)
	envs := make([]aggregate.Envelope, len(recs))
	for i, r := range recs {
		envs[i] = r.Event
	}
	return envs
}

func (b pgBundle) count(t testing.TB, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func TestPostgresSuite(t *testing.T) {
	t.Parallel()
	for _, lock := range []bool{false, true} {
		name := "Optimistic"
		if lock {
			name = "LockOnUpdate"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			repositorytest.Run(t, func(t *testing.T, opts repositorytest.Options) repositorytest.Harness {
				b := setupPG(t)
				repo, err := repository.NewPostgres(b.pool, b.store, opts.Mapping, &repository.PostgresConfig[*repositorytest.Counter]{
					Retry:        opts.Retry,
					LockOnUpdate: lock,
					Options:      opts.AggregateOptions,
				})
				require.NoError(t, err)
				return repositorytest.Harness{Repo: repo, Events: b.outboxEvents, LocksOnUpdate: lock}
			})
		})
	}
}

func newPGRepo(t *testing.T, b pgBundle, cfg *repository.PostgresConfig[*repositorytest.Counter]) *repository.Postgres[*repositorytest.Counter] {
	t.Helper()
	repo, err := repository.NewPostgres(b.pool, b.store, repositorytest.Mapping(), cfg)
	require.NoError(t, err)
	return repo
}

func TestNewPostgresValidates(t *testing.T) {
	t.Parallel()
	_, err := repository.NewPostgres[*repositorytest.Counter](nil, nil, repository.Mapping[*repositorytest.Counter]{},
		&repository.PostgresConfig[*repositorytest.Counter]{
			Retry:  &retry.Policy{BaseDelay: 2, MaxDelay: 1},
			Tables: repository.Tables{State: "same", Keys: "same"},
		})
	for _, want := range []string{"db is nil", "outbox is nil", "Mapping.Type", "Mapping.Decode", "larger than MaxDelay", `must differ`} {
		require.ErrorContains(t, err, want)
	}
}

func TestPostgresTransactSeveralAggregates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t)
	repo := newPGRepo(t, b, nil)
	c1, c2 := mustCounter(t, "c1"), mustCounter(t, "c2")

	// Rolled back: nothing written, nothing marked.
	boom := errors.New("boom")
	err := repository.Transact(ctx, b.pool, func(ctx context.Context, tx pgx.Tx) error {
		require.NoError(t, repo.SaveTx(ctx, tx, c1))
		require.NoError(t, repo.SaveTx(ctx, tx, c2))
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.True(t, c1.IsNew())
	require.True(t, c1.HasChanges())
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM aggregates`))
	require.Empty(t, b.outboxEvents(t))

	// Committed: both written, c1 twice (events 1..3), then marked.
	err = repository.Transact(ctx, b.pool, func(ctx context.Context, tx pgx.Tx) error {
		if err := repo.SaveTx(ctx, tx, c1); err != nil {
			return err
		}
		if err := c1.Add(1); err != nil {
			return err
		}
		if err := c1.Add(2); err != nil {
			return err
		}
		if err := repo.SaveTx(ctx, tx, c1); err != nil {
			return err
		}
		if err := repo.SaveTx(ctx, tx, c1); err != nil { // nothing new: no-op
			return err
		}
		if err := repo.SaveTx(ctx, tx, c2); err != nil {
			return err
		}
		require.True(t, c1.HasChanges(), "not marked before the commit")
		return repo.UpdateTx(ctx, tx, "c2", func(c *repositorytest.Counter) error { return c.Add(5) })
	})
	require.NoError(t, err)
	require.Equal(t, int64(3), c1.CommittedVersion())
	require.False(t, c1.HasChanges())
	require.Equal(t, int64(1), c2.CommittedVersion())

	got, err := repo.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, 3, got.Value())
	require.Equal(t, int64(3), got.Version())
	got, err = repo.Load(ctx, "c2")
	require.NoError(t, err)
	require.Equal(t, 5, got.Value())
	var versions []int64
	for _, e := range b.outboxEvents(t) {
		versions = append(versions, e.Version)
	}
	require.Equal(t, []int64{1, 2, 3, 1, 2}, versions)
}

func TestPostgresSaveTxOwnTransaction(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t)
	repo := newPGRepo(t, b, nil)
	c := mustCounter(t, "c1")

	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, repo.SaveTx(ctx, tx, c))
	_, err = tx.Exec(ctx, `CREATE TABLE side_effect (id text)`)
	require.NoError(t, err)
	loaded, err := repo.LoadTx(ctx, tx, "c1")
	require.NoError(t, err, "visible inside the transaction")
	require.Equal(t, int64(1), loaded.Version())
	require.NoError(t, tx.Commit(ctx))
	require.True(t, c.HasChanges(), "SaveTx leaves marking to the caller")
	aggregate.MarkCommitted(c)

	require.NoError(t, c.Add(1))
	require.NoError(t, repo.Save(ctx, c))
	require.Equal(t, int64(2), c.CommittedVersion())
	require.Len(t, b.outboxEvents(t), 2)
}

func TestPostgresStaleSaveTxRollsBackTransact(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		stale func(t *testing.T, repo *repository.Postgres[*repositorytest.Counter]) *repositorytest.Counter
		want  error
	}{
		{"StaleVersion", func(t *testing.T, repo *repository.Postgres[*repositorytest.Counter]) *repositorytest.Counter {
			stale, err := repo.Load(t.Context(), "c1")
			require.NoError(t, err)
			require.NoError(t, repo.Update(t.Context(), "c1", func(c *repositorytest.Counter) error { return c.Add(1) }))
			return stale
		}, aggregate.ErrConcurrencyConflict},
		{"TakenID", func(t *testing.T, _ *repository.Postgres[*repositorytest.Counter]) *repositorytest.Counter {
			return mustCounter(t, "c1")
		}, aggregate.ErrAlreadyExists},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			b := setupPG(t)
			repo := newPGRepo(t, b, nil)
			require.NoError(t, repo.Save(ctx, mustCounter(t, "c1")))
			fresh, stale := mustCounter(t, "c2"), tt.stale(t, repo)
			require.NoError(t, stale.Rename("other"))
			events := len(b.outboxEvents(t))

			err := repository.Transact(ctx, b.pool, func(ctx context.Context, tx pgx.Tx) error {
				require.NoError(t, repo.SaveTx(ctx, tx, fresh))
				return repo.SaveTx(ctx, tx, stale)
			})
			require.ErrorIs(t, err, tt.want)
			require.True(t, fresh.IsNew(), "nothing marked after a rollback")
			_, err = repo.Load(ctx, "c2")
			require.ErrorIs(t, err, aggregate.ErrNotFound)
			got, err := repo.LoadByKey(ctx, "name", "c1")
			require.NoError(t, err, "the failed save's keys were rolled back with it")
			require.Equal(t, "c1", got.ID())
			require.Len(t, b.outboxEvents(t), events)
		})
	}
}

// AfterSave maintains a lookup table in the same transaction; its failure
// rolls everything back.
func TestPostgresAfterSave(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t)
	_, err := b.pool.Exec(ctx, `CREATE TABLE counter_view (id text PRIMARY KEY, name text NOT NULL, value int NOT NULL)`)
	require.NoError(t, err)
	var mu sync.Mutex
	fail := error(nil)
	repo := newPGRepo(t, b, &repository.PostgresConfig[*repositorytest.Counter]{
		AfterSave: func(ctx context.Context, tx pgx.Tx, c *repositorytest.Counter) error {
			mu.Lock()
			defer mu.Unlock()
			if fail != nil {
				return fail
			}
			_, err := tx.Exec(ctx, `INSERT INTO counter_view VALUES ($1, $2, $3)
				ON CONFLICT (id) DO UPDATE SET name = excluded.name, value = excluded.value`, c.ID(), c.Name(), c.Value())
			return err
		},
	})
	c := mustCounter(t, "c1")
	require.NoError(t, c.Add(4))
	require.NoError(t, repo.Save(ctx, c))
	require.NoError(t, repo.Update(ctx, "c1", func(c *repositorytest.Counter) error { return c.Add(1) }))
	require.Equal(t, 5, b.count(t, `SELECT value FROM counter_view WHERE id = 'c1'`))

	mu.Lock()
	fail = errors.New("view is broken")
	mu.Unlock()
	err = repo.Update(ctx, "c1", func(c *repositorytest.Counter) error { return c.Add(100) })
	require.ErrorContains(t, err, "after save: view is broken")
	got, err := repo.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, 5, got.Value())
	require.Len(t, b.outboxEvents(t), 3)
}

// failingWriter is an OutboxWriter that always fails.
type failingWriter struct{}

func (failingWriter) Write(context.Context, pgx.Tx, ...aggregate.Envelope) error {
	return errors.New("outbox unavailable")
}

func TestPostgresOutboxFailureWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t)
	repo, err := repository.NewPostgres(b.pool, failingWriter{}, repositorytest.Mapping(), nil)
	require.NoError(t, err)
	c := mustCounter(t, "c1")
	require.ErrorContains(t, repo.Save(ctx, c), "outbox unavailable")
	require.True(t, c.IsNew())
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM aggregates`))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM aggregate_keys`))
}

func TestMigrateIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, schema := testinfra.Schema(t)
	tables := &repository.Tables{Schema: schema + "_own", State: "agg state", Keys: "agg keys"}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{tables.Schema}.Sanitize()+` CASCADE`)
	})
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = repository.Migrate(ctx, pool, tables) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, repository.Migrate(ctx, pool, tables))

	require.NoError(t, outbox.Migrate(ctx, pool, nil))
	store, err := outbox.NewStore(nil)
	require.NoError(t, err)
	repo, err := repository.NewPostgres(pool, store, repositorytest.Mapping(), &repository.PostgresConfig[*repositorytest.Counter]{Tables: *tables})
	require.NoError(t, err)
	require.NoError(t, repo.Save(ctx, mustCounter(t, "c1")))
	got, err := repo.LoadByKey(ctx, "name", "c1")
	require.NoError(t, err)
	require.Equal(t, "c1", got.ID())
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{tables.Schema, tables.State}.Sanitize()).Scan(&n))
	require.Equal(t, 1, n)
}

func TestPostgresRejectsBadInput(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t)
	repo := newPGRepo(t, b, nil)
	var nilCounter *repositorytest.Counter
	require.Error(t, repo.Save(ctx, nilCounter))
	require.Error(t, repo.SaveTx(ctx, nil, mustCounter(t, "c1")))
	require.Error(t, repo.Update(ctx, "c1", nil))
	require.Error(t, repository.Transact(ctx, nil, nil))

	m := repositorytest.Mapping()
	m.Decode = func(string, []byte) (*repositorytest.Counter, error) { return nil, errors.New("corrupt") }
	broken, err := repository.NewPostgres(b.pool, b.store, m, nil)
	require.NoError(t, err)
	require.NoError(t, repo.Save(ctx, mustCounter(t, "c1")))
	_, err = broken.Load(ctx, "c1")
	require.ErrorContains(t, err, "corrupt")
}
