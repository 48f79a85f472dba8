package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
	"github.com/dddkit/dddkit/retry"
)

// pgBundle is a migrated schema of the test's own with an outbox.
type pgBundle struct {
	pool   *pgxpool.Pool
	schema string
	outbox *postgres.Outbox
	uow    *postgres.UnitOfWork
}

func setupPG(t testing.TB, reg *eventbus.Registry) pgBundle {
	t.Helper()
	pool, schema := pgtest.Schema(t)
	require.NoError(t, postgres.Migrate(context.Background(), pool, nil))
	ob, err := postgres.NewOutbox(pool, reg, nil)
	require.NoError(t, err)
	uow, err := postgres.NewUnitOfWork(pool)
	require.NoError(t, err)
	return pgBundle{pool: pool, schema: schema, outbox: ob, uow: uow}
}

// outboxEvents lists the pending outbox rows in sequence order, through
// the outbox's operator API (payloads nil).
func (b pgBundle) outboxEvents(t testing.TB) []aggregate.Envelope {
	t.Helper()
	recs, err := b.outbox.List(context.Background(), outbox.StatusPending, 0, 0)
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

// column returns the one column that sql selects on db, row by row.
func column[T any](t testing.TB, db postgres.DB, sql string, args ...any) []T {
	t.Helper()
	rows, err := db.Query(context.Background(), sql, args...)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	require.NoError(t, err)
	return out
}

func TestRepositorySuite(t *testing.T) {
	t.Parallel()
	for _, lock := range []bool{false, true} {
		name := "Optimistic"
		if lock {
			name = "LockOnUpdate"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			repositorytest.Run(t, func(t *testing.T, opts repositorytest.Options) repositorytest.Harness {
				b := setupPG(t, opts.Registry)
				repo, err := postgres.NewRepository(b.pool, b.outbox, opts.Mapping, &postgres.RepositoryConfig{
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

func mustCounter(t *testing.T, id string) *repositorytest.Counter {
	t.Helper()
	c, err := repositorytest.NewCounter(id, id)
	require.NoError(t, err)
	return c
}

func newRepo(t *testing.T, b pgBundle, cfg *postgres.RepositoryConfig) *postgres.Repository[*repositorytest.Counter] {
	t.Helper()
	repo, err := postgres.NewRepository(b.pool, b.outbox, repositorytest.Mapping(), cfg)
	require.NoError(t, err)
	return repo
}

func TestNewRepositoryValidates(t *testing.T) {
	t.Parallel()
	_, err := postgres.NewRepository[*repositorytest.Counter](nil, nil, repository.Mapping[*repositorytest.Counter]{},
		&postgres.RepositoryConfig{Retry: &retry.Policy{BaseDelay: 2, MaxDelay: 1}})
	for _, want := range []string{"nil DB", "nil Outbox", "Mapping.Type", "Mapping.Decode", "larger than MaxDelay"} {
		require.ErrorContains(t, err, want)
	}
}

// The unit of work: two aggregates and the caller's own row commit
// together or roll back together; aggregates are marked committed only
// after the commit; saving one aggregate twice writes each event once.
func TestUnitOfWorkSeveralAggregatesAndOwnSQL(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b, repo := setupAudit(t)
	ownRow := func(ctx context.Context, what string) error {
		tx, ok := postgres.TxFromContext(ctx)
		require.True(t, ok, "the unit's transaction is in the context")
		_, err := tx.Exec(ctx, `INSERT INTO audit VALUES ($1)`, what)
		return err
	}
	c1, c2 := mustCounter(t, "c1"), mustCounter(t, "c2")

	// Rolled back: nothing written, nothing marked.
	boom := errors.New("boom")
	err := b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, c1))
		require.NoError(t, repo.Save(ctx, c2))
		require.NoError(t, ownRow(ctx, "rolled back"))
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.True(t, c1.IsNew())
	require.True(t, c1.HasChanges())
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM aggregates`))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM audit`))
	require.Empty(t, b.outboxEvents(t))

	// Committed: both written, c1 twice (events 1..3), then marked.
	err = b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, c1))
		require.NoError(t, c1.Add(1))
		require.NoError(t, c1.Add(2))
		require.NoError(t, repo.Save(ctx, c1))
		require.NoError(t, repo.Save(ctx, c1)) // nothing new: no-op
		require.NoError(t, repo.Save(ctx, c2))
		got, err := repo.Load(ctx, "c1")
		require.NoError(t, err, "visible inside the unit")
		require.Equal(t, int64(3), got.Version())
		require.True(t, c1.HasChanges(), "not marked before the commit")
		require.NoError(t, ownRow(ctx, "committed"))
		return repo.Update(ctx, "c2", func(c *repositorytest.Counter) error { return c.Add(5) })
	})
	require.NoError(t, err)
	require.Equal(t, int64(3), c1.CommittedVersion())
	require.False(t, c1.HasChanges())
	require.Equal(t, int64(1), c2.CommittedVersion())
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM audit WHERE what = 'committed'`))

	got, err := repo.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, 3, got.Value())
	got, err = repo.Load(ctx, "c2")
	require.NoError(t, err)
	require.Equal(t, 5, got.Value())
	var versions []int64
	for _, e := range b.outboxEvents(t) {
		versions = append(versions, e.Version)
	}
	require.Equal(t, []int64{1, 2, 3, 1, 2}, versions)
}

// setupAudit gives a test a repository of counters and a table "audit"
// for rows of the caller's own.
func setupAudit(t *testing.T) (pgBundle, *postgres.Repository[*repositorytest.Counter]) {
	t.Helper()
	b := setupPG(t, repositorytest.Registry(t))
	_, err := b.pool.Exec(t.Context(), `CREATE TABLE audit (what text NOT NULL)`)
	require.NoError(t, err)
	return b, newRepo(t, b, nil)
}

// staleC1 loads c1 and then lets another writer update it: the loaded
// copy is stale.
func staleC1(t *testing.T, repo *postgres.Repository[*repositorytest.Counter]) *repositorytest.Counter {
	stale, err := repo.Load(t.Context(), "c1")
	require.NoError(t, err)
	require.NoError(t, repo.Update(t.Context(), "c1", func(c *repositorytest.Counter) error { return c.Add(1) }))
	return stale
}

// A conflict (or a taken ID) on the second aggregate rolls back the first
// and the caller's row, even when the function swallows the error.
func TestUnitOfWorkConflictRollsBackEverything(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name    string
		stale   func(t *testing.T, repo *postgres.Repository[*repositorytest.Counter]) *repositorytest.Counter
		want    error
		swallow bool
	}{
		{"StaleVersion", staleC1, aggregate.ErrConcurrencyConflict, false},
		{"TakenID", func(t *testing.T, _ *postgres.Repository[*repositorytest.Counter]) *repositorytest.Counter {
			return mustCounter(t, "c1")
		}, aggregate.ErrAlreadyExists, false},
		{"SwallowedConflict", staleC1, postgres.ErrRollbackOnly, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			b, repo := setupAudit(t)
			require.NoError(t, repo.Save(ctx, mustCounter(t, "c1")))
			fresh, stale := mustCounter(t, "c2"), tt.stale(t, repo)
			require.NoError(t, stale.Rename("other"))
			events := len(b.outboxEvents(t))

			err := b.uow.Do(ctx, func(ctx context.Context) error {
				require.NoError(t, repo.Save(ctx, fresh))
				tx, _ := postgres.TxFromContext(ctx)
				_, err := tx.Exec(ctx, `INSERT INTO audit VALUES ('x')`)
				require.NoError(t, err)
				err = repo.Save(ctx, stale)
				if tt.swallow {
					require.Error(t, err)
					return nil
				}
				return err
			})
			require.ErrorIs(t, err, tt.want)
			require.True(t, fresh.IsNew(), "nothing marked after a rollback")
			_, err = repo.Load(ctx, "c2")
			require.ErrorIs(t, err, aggregate.ErrNotFound)
			require.Equal(t, 0, b.count(t, `SELECT count(*) FROM audit`))
			got, err := repo.LoadByKey(ctx, "name", "c1")
			require.NoError(t, err, "the failed save's keys were rolled back with it")
			require.Equal(t, "c1", got.ID())
			require.Len(t, b.outboxEvents(t), events)
		})
	}
}

// Nested units join the outer one: one transaction, committed by the
// outermost Do; a failed inner unit spoils the outer one.
func TestUnitOfWorkNestedJoins(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	repo := newRepo(t, b, nil)
	c1, c2 := mustCounter(t, "c1"), mustCounter(t, "c2")

	err := b.uow.Do(ctx, func(ctx context.Context) error {
		outer, _ := postgres.TxFromContext(ctx)
		require.NoError(t, repo.Save(ctx, c1))
		err := b.uow.Do(ctx, func(ctx context.Context) error {
			inner, _ := postgres.TxFromContext(ctx)
			require.Same(t, outer, inner, "the nested unit joins the outer transaction")
			return repo.Save(ctx, c2)
		})
		require.NoError(t, err)
		require.True(t, c2.HasChanges(), "the nested unit does not commit")
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM aggregates`).Scan(&n))
		require.Equal(t, 0, n, "nothing visible outside before the outer commit")
		return nil
	})
	require.NoError(t, err)
	require.False(t, c1.HasChanges())
	require.False(t, c2.HasChanges())
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM aggregates`))

	// A failed nested unit rolls the outer one back, even if the outer
	// function carries on.
	c3 := mustCounter(t, "c3")
	err = b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, c3))
		_ = b.uow.Do(ctx, func(context.Context) error { return errors.New("inner failed") })
		return nil
	})
	require.ErrorIs(t, err, postgres.ErrRollbackOnly)
	require.True(t, c3.HasChanges())
	require.Equal(t, 2, b.count(t, `SELECT count(*) FROM aggregates`))
}

// A repository given a pgx.Tx works inside that transaction.
func TestRepositoryOnACallersTx(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	ob, err := postgres.NewOutbox(tx, repositorytest.Registry(t), nil)
	require.NoError(t, err)
	repo, err := postgres.NewRepository(tx, ob, repositorytest.Mapping(), nil)
	require.NoError(t, err)
	c := mustCounter(t, "c1")
	require.NoError(t, repo.Save(ctx, c))
	require.False(t, c.HasChanges(), "the savepoint committed")
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM aggregates`), "not visible before the caller commits")
	require.NoError(t, tx.Commit(ctx))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM aggregates`))
}

// An event that is not registered is refused before anything is written.
func TestRepositoryUnregisteredEventWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test"})
	b := setupPG(t, reg) // knows none of Counter's events
	repo := newRepo(t, b, nil)
	c := mustCounter(t, "c1")
	err := repo.Save(ctx, c)
	require.ErrorIs(t, err, outbox.ErrInvalidEvent)
	require.ErrorIs(t, err, eventbus.ErrNotRegistered)
	require.True(t, c.IsNew())
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM aggregates`))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM aggregate_keys`))
}

func TestRepositoryRejectsBadInput(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	repo := newRepo(t, b, nil)
	var nilCounter *repositorytest.Counter
	require.Error(t, repo.Save(ctx, nilCounter))
	require.Error(t, repo.Update(ctx, "c1", nil))
	require.Error(t, b.uow.Do(ctx, nil))
	_, err := postgres.NewUnitOfWork(nil)
	require.Error(t, err)

	m := repositorytest.Mapping()
	m.Decode = func(string, []byte) (*repositorytest.Counter, error) { return nil, errors.New("corrupt") }
	broken, err := postgres.NewRepository(b.pool, b.outbox, m, nil)
	require.NoError(t, err)
	require.NoError(t, repo.Save(ctx, mustCounter(t, "c1")))
	_, err = broken.Load(ctx, "c1")
	require.ErrorContains(t, err, "corrupt")
}

// A unit of work marks committed what it wrote: events recorded after an
// aggregate's last save in the unit, or saved in a savepoint rolled back
// since, stay uncommitted, and the next save writes them.
func TestUnitOfWorkMarksCommittedWhatItWrote(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	repo := newRepo(t, b, nil)
	c := mustCounter(t, "c")
	stored := func() int64 {
		got, err := repo.Load(ctx, "c")
		require.NoError(t, err)
		return got.Version()
	}

	require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, c))
		return c.Add(1) // recorded after the last save: not written
	}))
	require.Equal(t, int64(1), stored())
	require.Equal(t, int64(1), c.CommittedVersion())
	require.Equal(t, int64(2), c.Version())
	require.Len(t, c.Changes(), 1)

	require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, c)) // version 2
		require.NoError(t, c.Add(2))
		tx, _ := postgres.TxFromContext(ctx)
		sp, err := tx.Begin(ctx)
		require.NoError(t, err)
		require.NoError(t, repo.Save(ctx, c)) // version 3, rolled back
		return sp.Rollback(ctx)
	}))
	require.Equal(t, int64(2), stored())
	require.Equal(t, int64(2), c.CommittedVersion())
	require.Len(t, c.Changes(), 1)

	require.NoError(t, repo.Save(ctx, c)) // writes what was left
	require.Equal(t, int64(3), stored())
	require.False(t, c.HasChanges())
	var versions []int64
	for _, e := range b.outboxEvents(t) {
		versions = append(versions, e.Version)
	}
	require.Equal(t, []int64{1, 2, 3}, versions)
}

// A savepoint's rollback undoes the unit's saves made in it, as it does
// their rows: the aggregate is not marked committed, saving it again
// writes it, and a save that failed in it no longer rolls the unit back.
// On a pool (a unit's lazy transaction) and on one connection.
func TestUnitOfWorkSavepointRollbackForgetsItsSaves(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	conn, err := b.pool.Acquire(ctx)
	require.NoError(t, err)
	t.Cleanup(conn.Release)
	for name, db := range map[string]postgres.DB{"pool": b.pool, "conn": conn} {
		t.Run(name, func(t *testing.T) {
			repo, err := postgres.NewRepository(db, b.outbox, repositorytest.Mapping(), nil)
			require.NoError(t, err)
			uow, err := postgres.NewUnitOfWork(db)
			require.NoError(t, err)
			undone, again := mustCounter(t, name+"-undone"), mustCounter(t, name+"-again")
			require.NoError(t, uow.Do(ctx, func(ctx context.Context) error {
				tx, _ := postgres.TxFromContext(ctx)
				sp, err := tx.Begin(ctx)
				require.NoError(t, err)
				require.NoError(t, repo.Save(ctx, undone))
				require.NoError(t, repo.Save(ctx, again))
				require.NoError(t, sp.Rollback(ctx))
				return repo.Save(ctx, again) // written again, not skipped as saved
			}))
			require.True(t, undone.HasChanges(), "not marked committed: its save was rolled back")
			require.False(t, again.HasChanges())
			_, err = repo.Load(ctx, undone.ID())
			require.ErrorIs(t, err, aggregate.ErrNotFound)
			got, err := repo.Load(ctx, again.ID())
			require.NoError(t, err)
			require.Equal(t, again.Version(), got.Version())

			// A save and a nested unit that fail inside a nested
			// savepoint, rolled back: the unit commits the rest.
			stale := mustCounter(t, name+"-again") // already exists
			other := mustCounter(t, name+"-other")
			require.NoError(t, uow.Do(ctx, func(ctx context.Context) error {
				tx, _ := postgres.TxFromContext(ctx)
				outer, err := tx.Begin(ctx)
				require.NoError(t, err)
				require.NoError(t, repo.Save(ctx, other))
				inner, err := outer.Begin(ctx)
				require.NoError(t, err)
				require.ErrorAs(t, repo.Save(ctx, stale), new(*aggregate.AlreadyExistsError))
				require.Error(t, uow.Do(ctx, func(context.Context) error { return errors.New("nested unit failed") }))
				require.NoError(t, inner.Rollback(ctx))
				return outer.Commit(ctx)
			}))
			require.False(t, other.HasChanges())
			require.True(t, stale.HasChanges())
			_, err = repo.Load(ctx, other.ID())
			require.NoError(t, err)
		})
	}
}
