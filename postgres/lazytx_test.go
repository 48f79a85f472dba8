package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

const insertLazyRow = `INSERT INTO lazy_rows (k) VALUES ($1)`

const selectLazyRows = `SELECT k FROM lazy_rows ORDER BY k`

// A unit of work on a pool begins its transaction with its first
// statement: BEGIN goes out in that statement's round trip when the
// statement can be batched, and on its own otherwise. Whichever way it
// begins, everything the unit does is in the transaction: kept on
// commit, gone on rollback. A unit that runs no statement sends nothing.
func TestUnitOfWorkBeginsWithItsFirstStatement(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b, log := setupTraced(t)
	_, err := b.pool.Exec(ctx, `CREATE TABLE lazy_rows (k text PRIMARY KEY)`)
	require.NoError(t, err)
	log.take()

	errRollBack := errors.New("roll back")
	require.NoError(t, b.uow.Do(ctx, func(context.Context) error { return nil }))
	require.ErrorIs(t, b.uow.Do(ctx, func(context.Context) error { return errRollBack }), errRollBack)
	require.Empty(t, log.take(), "a unit without statements sends nothing")

	for _, tt := range []struct {
		name  string
		first []string // what the unit sends first
		write func(ctx context.Context, tx pgx.Tx, key string) error
	}{
		{"Exec", []string{"BEGIN+INSERT"}, func(ctx context.Context, tx pgx.Tx, key string) error {
			_, err := tx.Exec(ctx, insertLazyRow, key)
			return err
		}},
		{"QueueExec", []string{"BEGIN+INSERT"}, func(ctx context.Context, _ pgx.Tx, key string) error {
			return postgres.QueueExec(ctx, insertLazyRow, key)
		}},
		{"Query", []string{"BEGIN+INSERT"}, func(ctx context.Context, tx pgx.Tx, key string) error {
			rows, err := tx.Query(ctx, insertLazyRow+` RETURNING k`, key)
			if err != nil {
				return err
			}
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err == nil && (len(got) != 1 || got[0] != key) {
				err = fmt.Errorf("Query returned %q", got)
			}
			return err
		}},
		{"QueryRow", []string{"BEGIN+INSERT"}, func(ctx context.Context, tx pgx.Tx, key string) error {
			var got string
			if err := tx.QueryRow(ctx, insertLazyRow+` RETURNING k`, key).Scan(&got); err != nil {
				return err
			}
			if got != key {
				return errors.New("QueryRow returned " + got)
			}
			return nil
		}},
		{"SendBatch", []string{"BEGIN+BATCH"}, func(ctx context.Context, tx pgx.Tx, key string) error {
			batch := &pgx.Batch{}
			batch.Queue(insertLazyRow, key)
			batch.Queue(`DELETE FROM lazy_rows WHERE k = $1`, key+"-gone")
			br := tx.SendBatch(ctx, batch)
			tag, err := br.Exec()
			if err == nil && tag.RowsAffected() != 1 {
				err = errors.New("the batch's insert wrote " + tag.String())
			}
			if cerr := br.Close(); err == nil {
				err = cerr
			}
			return err
		}},
		{"Exec without arguments", []string{"BEGIN", "INSERT"}, func(ctx context.Context, tx pgx.Tx, key string) error {
			_, err := tx.Exec(ctx, `INSERT INTO lazy_rows (k) VALUES ('`+key+`')`)
			return err
		}},
		{"Exec with pgx.NamedArgs", []string{"BEGIN", "INSERT"}, func(ctx context.Context, tx pgx.Tx, key string) error {
			_, err := tx.Exec(ctx, `INSERT INTO lazy_rows (k) VALUES (@k)`, pgx.NamedArgs{"k": key})
			return err
		}},
		{"CopyFrom", []string{"BEGIN"}, func(ctx context.Context, tx pgx.Tx, key string) error {
			_, err := tx.CopyFrom(ctx, pgx.Identifier{"lazy_rows"}, []string{"k"}, pgx.CopyFromRows([][]any{{key}}))
			return err
		}},
		{"savepoint", []string{"BEGIN", "SAVEPOINT", "INSERT", "RELEASE"}, func(ctx context.Context, tx pgx.Tx, key string) error {
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := sp.Exec(ctx, insertLazyRow, key); err != nil {
				return err
			}
			return sp.Commit(ctx)
		}},
		{"Conn", []string{"BEGIN", "INSERT"}, func(ctx context.Context, tx pgx.Tx, key string) error {
			_, err := tx.Conn().Exec(ctx, insertLazyRow, key)
			return err
		}},
	} {
		for _, commit := range []bool{false, true} {
			key := tt.name
			if commit {
				key += " committed"
			}
			err := b.uow.Do(ctx, func(ctx context.Context) error {
				tx, ok := postgres.TxFromContext(ctx)
				require.True(t, ok)
				if err := tt.write(ctx, tx, key); err != nil {
					return err
				}
				// A second statement runs in the same transaction.
				if _, err := tx.Exec(ctx, insertLazyRow, key+" too"); err != nil {
					return err
				}
				if !commit {
					return errRollBack
				}
				return nil
			})
			sent := log.take()
			require.GreaterOrEqual(t, len(sent), len(tt.first)+1, "%s: %v", tt.name, sent)
			require.Equal(t, tt.first, sent[:len(tt.first)], "%s: what began the unit", tt.name)
			if commit {
				require.NoError(t, err, tt.name)
				require.Equal(t, "COMMIT", sent[len(sent)-1], tt.name)
			} else {
				require.ErrorIs(t, err, errRollBack, tt.name)
				require.Equal(t, "ROLLBACK", sent[len(sent)-1], tt.name)
			}
		}
	}
	var want []string
	for _, name := range []string{"Exec", "QueueExec", "Query", "QueryRow", "SendBatch", "Exec without arguments",
		"Exec with pgx.NamedArgs", "CopyFrom", "savepoint", "Conn"} {
		want = append(want, name+" committed", name+" committed too")
	}
	require.ElementsMatch(t, want, column[string](t, b.pool, selectLazyRows), "the committed units' rows, none of the rolled back ones'")
	require.Zero(t, b.pool.Stat().AcquiredConns(), "every unit handed its connection back")
}

// A first statement that PostgreSQL refuses fails the unit as a failed
// statement fails a transaction: the unit's later statements fail, and
// it commits nothing, whether the statement was refused before BEGIN ran
// (pgx prepares a batch's statements before it runs the first) or after.
func TestUnitOfWorkFirstStatementRefused(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b, _ := setupTraced(t)
	_, err := b.pool.Exec(ctx, `CREATE TABLE lazy_rows (k text PRIMARY KEY); INSERT INTO lazy_rows VALUES ('taken')`)
	require.NoError(t, err)

	for _, tt := range []struct {
		name, sql, code string
	}{
		{"refused when prepared", `INSERT INTO no_such_table (k) VALUES ($1)`, "42P01"},
		{"refused when run", insertLazyRow, "23505"},
	} {
		var first, second error
		err := b.uow.Do(ctx, func(ctx context.Context) error {
			tx, _ := postgres.TxFromContext(ctx)
			_, first = tx.Exec(ctx, tt.sql, "taken")
			_, second = tx.Exec(ctx, insertLazyRow, "after "+tt.name)
			return nil // ignores both errors
		})
		var pgErr *pgconn.PgError
		require.ErrorAs(t, first, &pgErr, tt.name)
		require.Equal(t, tt.code, pgErr.Code, tt.name)
		require.NotErrorIs(t, first, postgres.ErrBegin, "%s: the statement failed, not the begin", tt.name)
		require.Error(t, second, "%s: a statement after the refused one", tt.name)
		if tt.code == "42P01" {
			// Refused before BEGIN ran: the unit says so, as PostgreSQL
			// does in a failed transaction (25P02).
			require.ErrorContains(t, second, "an earlier statement failed", tt.name)
			require.ErrorIs(t, second, first, tt.name)
		} else {
			require.ErrorAs(t, second, &pgErr, tt.name)
			require.Equal(t, "25P02", pgErr.Code, tt.name)
		}
		require.ErrorIs(t, err, pgx.ErrTxCommitRollback, tt.name)
	}
	require.Equal(t, []string{"taken"}, column[string](t, b.pool, selectLazyRows), "nothing committed")
	require.Zero(t, b.pool.Stat().AcquiredConns())
}

// A unit whose transaction cannot begin fails its first statement with an
// error the Inbox reports as an outage (eventbus.ErrUnavailable): no
// connection to be had, or a connection the server ended while it was
// idle in the pool.
func TestUnitOfWorkCannotBegin(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	down := pgtest.Pool(t)
	down.Close()
	uow, err := postgres.NewUnitOfWork(down)
	require.NoError(t, err)
	err = uow.Do(ctx, func(ctx context.Context) error {
		tx, _ := postgres.TxFromContext(ctx)
		_, err := tx.Exec(ctx, `SELECT $1::int`, 1)
		return err
	})
	require.ErrorIs(t, err, postgres.ErrBegin)

	dbURL, _ := pgtest.SchemaURL(t)
	cfg, err := pgxpool.ParseConfig(dbURL)
	require.NoError(t, err)
	cfg.MaxConns = 1
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	inbox, err := postgres.NewInbox(pool, nil)
	require.NoError(t, err)
	var pid int32
	require.NoError(t, pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	var ended bool
	require.NoError(t, pgtest.Pool(t).QueryRow(ctx, `SELECT pg_terminate_backend($1, 5000)`, pid).Scan(&ended))
	require.True(t, ended)

	ran := false
	_, err = inbox.Process(ctx, "h", envelope("e-1"), func(context.Context) error { ran = true; return nil })
	require.ErrorIs(t, err, eventbus.ErrUnavailable, "the pool's connection was gone")
	require.ErrorIs(t, err, postgres.ErrBegin)
	require.False(t, ran)

	applied, err := inbox.Process(ctx, "h", envelope("e-1"), func(context.Context) error { ran = true; return nil })
	require.NoError(t, err, "the pool connects again")
	require.True(t, applied)
	require.True(t, ran)
}

// The unit begins with its first statement in every query mode of pgx
// (PgBouncer users run the simple protocol, for example): its statements
// are in the transaction, and a refused first statement fails the unit.
func TestUnitOfWorkBeginsInEveryQueryMode(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dbURL, _ := pgtest.SchemaURL(t)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe,
		pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		cfg, err := pgxpool.ParseConfig(dbURL)
		require.NoError(t, err)
		cfg.ConnConfig.DefaultQueryExecMode = mode
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		require.NoError(t, postgres.Migrate(ctx, pool, nil))
		table := pgx.Identifier{"lazy_" + mode.String()}.Sanitize()
		_, err = pool.Exec(ctx, `CREATE TABLE `+table+` (k text PRIMARY KEY)`)
		require.NoError(t, err)
		uow, err := postgres.NewUnitOfWork(pool)
		require.NoError(t, err)

		errRollBack := errors.New("roll back")
		for _, commit := range []bool{false, true} {
			err := uow.Do(ctx, func(ctx context.Context) error {
				tx, _ := postgres.TxFromContext(ctx)
				var got string
				if err := tx.QueryRow(ctx, `INSERT INTO `+table+` (k) VALUES ($1) RETURNING k`, "first").Scan(&got); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (k) VALUES ($1)`, "second"); err != nil {
					return err
				}
				if !commit {
					return errRollBack
				}
				return nil
			})
			if commit {
				require.NoError(t, err, mode)
			} else {
				require.ErrorIs(t, err, errRollBack, mode)
				require.Empty(t, column[string](t, pool, `SELECT k FROM `+table), "%s: rolled back", mode)
			}
		}
		err = uow.Do(ctx, func(ctx context.Context) error {
			tx, _ := postgres.TxFromContext(ctx)
			_, _ = tx.Exec(ctx, `INSERT INTO `+table+` (k) VALUES ($1)`, "first") // taken
			_, _ = tx.Exec(ctx, `INSERT INTO `+table+` (k) VALUES ($1)`, "third")
			return nil
		})
		require.ErrorIs(t, err, pgx.ErrTxCommitRollback, mode)
		require.Equal(t, []string{"first", "second"}, column[string](t, pool, `SELECT k FROM `+table+` ORDER BY k`), mode)
		require.Zero(t, pool.Stat().AcquiredConns(), mode)
	}
}

// A unit of work on a pool holds a save back and sends it with the
// unit's COMMIT, or, when the unit runs another statement first, before
// that statement, so that the unit reads what it wrote. A unit that
// rolls back never sends it. A held save that fails rolls the unit back
// and is the unit's error; the connection goes back to the pool.
func TestUnitOfWorkHoldsSavesForItsCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b, log := setupTraced(t)
	mapping := repositorytest.Mapping()
	mapping.Keys = nil // a save with keys is not held back
	repo, err := postgres.NewRepository(b.pool, b.outbox, mapping, nil)
	require.NoError(t, err)
	_, err = b.outbox.Stats(ctx)
	require.NoError(t, err)
	log.take()

	// Rolled back: nothing sent at all.
	errRollBack := errors.New("roll back")
	c0 := mustCounter(t, "c0")
	require.ErrorIs(t, b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, c0))
		return errRollBack
	}), errRollBack)
	require.Empty(t, log.take(), "a held save of a unit that rolls back is never sent")
	require.True(t, c0.HasChanges())

	// Read back in the unit: BEGIN and the save go first, then the read.
	c1 := mustCounter(t, "c1")
	require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, c1))
		got, err := repo.Load(ctx, "c1")
		require.NoError(t, err)
		require.Equal(t, int64(1), got.Version(), "the unit reads what it saved")
		return nil
	}))
	require.Equal(t, []string{"BEGIN+WITH", "SELECT", "COMMIT"}, log.take())
	require.False(t, c1.HasChanges(), "marked committed")

	// Two saves and the commit: one round trip.
	c2, c3 := mustCounter(t, "c2"), mustCounter(t, "c3")
	require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, c2))
		return repo.Save(ctx, c3)
	}))
	require.Equal(t, []string{"BEGIN+BATCH+COMMIT"}, log.take())

	// Loaded, then saved with the COMMIT. The transaction is closed
	// after: its connection went back to the pool.
	var kept pgx.Tx
	require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error {
		kept, _ = postgres.TxFromContext(ctx)
		return repo.Update(ctx, "c3", func(c *repositorytest.Counter) error { return c.Add(1) })
	}))
	require.Equal(t, []string{"BEGIN+SELECT", "WITH+COMMIT"}, log.take())
	_, err = kept.Exec(ctx, `SELECT 1`)
	require.ErrorIs(t, err, pgx.ErrTxClosed)
	require.Empty(t, log.take())

	// A held save that conflicts: the unit's error, nothing committed,
	// the later statement never runs.
	stale, err := repo.Load(ctx, "c2")
	require.NoError(t, err)
	require.NoError(t, repo.Update(ctx, "c2", func(c *repositorytest.Counter) error { return c.Add(1) }))
	require.NoError(t, stale.Add(5))
	c4 := mustCounter(t, "c4")
	log.take()
	err = b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, c4))
		return repo.Save(ctx, stale)
	})
	var conflict *aggregate.ConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, aggregate.ConflictError{Type: repositorytest.CounterType, ID: "c2", Expected: 1, Actual: -1}, *conflict)
	require.Equal(t, []string{"BEGIN+BATCH+COMMIT", "ROLLBACK"}, log.take())
	require.True(t, c4.HasChanges(), "nothing marked committed")
	_, err = repo.Load(ctx, "c4")
	require.ErrorIs(t, err, aggregate.ErrNotFound, "the unit rolled back")
	got, err := repo.Load(ctx, "c2")
	require.NoError(t, err)
	require.Equal(t, int64(2), got.Version())
	// (The notification of an earlier unit's commit holds a connection
	// for a moment, on its own goroutine.)
	require.Eventually(t, func() bool { return b.pool.Stat().AcquiredConns() == 0 }, 5*time.Second, 5*time.Millisecond,
		"the connection is back in the pool")

	// In a savepoint a save is sent at once, so that the savepoint's
	// rollback undoes it; after it, saves are held back again.
	log.take()
	require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error {
		tx, _ := postgres.TxFromContext(ctx)
		sp, err := tx.Begin(ctx)
		require.NoError(t, err)
		require.NoError(t, repo.Save(ctx, mustCounter(t, "c5")))
		require.NoError(t, sp.Rollback(ctx))
		return repo.Save(ctx, mustCounter(t, "c6"))
	}))
	require.Equal(t, []string{"BEGIN", "SAVEPOINT", "WITH", "ROLLBACK", "WITH+COMMIT"}, log.take())
	_, err = repo.Load(ctx, "c5")
	require.ErrorIs(t, err, aggregate.ErrNotFound, "rolled back with the savepoint")
	_, err = repo.Load(ctx, "c6")
	require.NoError(t, err)

	// Once the connection is handed out, saves are sent at once: its
	// statements would not see a held one.
	log.take()
	require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error {
		tx, _ := postgres.TxFromContext(ctx)
		conn := tx.Conn()
		require.NoError(t, repo.Save(ctx, mustCounter(t, "c7")))
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM aggregates WHERE id = 'c7'`).Scan(&n))
		require.Equal(t, 1, n, "the connection's statement sees the save")
		return nil
	}))
	require.Equal(t, []string{"BEGIN", "WITH", "SELECT", "COMMIT"}, log.take())

	// Flush sends what the unit holds: here a taken ID, which the
	// function can act on inside the unit.
	log.take()
	require.NoError(t, postgres.Flush(ctx), "no unit: nothing to do")
	errTaken := errors.New("taken")
	err = b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, postgres.Flush(ctx), "nothing held")
		require.NoError(t, repo.Save(ctx, mustCounter(t, "c1")))
		if err := postgres.Flush(ctx); errors.Is(err, aggregate.ErrAlreadyExists) {
			return errTaken
		}
		return errors.New("the taken ID was not reported")
	})
	require.ErrorIs(t, err, errTaken)
	require.Equal(t, []string{"BEGIN+WITH", "ROLLBACK"}, log.take())

	// A taken ID found by the statement after the save: that statement
	// returns the error, the unit does not commit.
	log.take()
	err = b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, mustCounter(t, "c1")))
		tx, _ := postgres.TxFromContext(ctx)
		_, err := tx.Exec(ctx, `SELECT 1`)
		require.ErrorIs(t, err, aggregate.ErrAlreadyExists)
		_, err = tx.Exec(ctx, `SELECT 2`)
		require.ErrorIs(t, err, aggregate.ErrAlreadyExists, "nothing runs after it")
		return nil // swallowed
	})
	require.ErrorIs(t, err, aggregate.ErrAlreadyExists)
	require.Equal(t, []string{"BEGIN+WITH", "ROLLBACK"}, log.take())
	require.Eventually(t, func() bool { return b.pool.Stat().AcquiredConns() == 0 }, 5*time.Second, 5*time.Millisecond,
		"the connection is back in the pool")
}
