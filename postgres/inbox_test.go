package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/eventbus/eventbustest"
	"github.com/dddkit/dddkit/postgres"
)

// inboxBundle is a migrated schema of the test's own, its inbox, and an
// effects table that handlers write to in the inbox's transaction.
type inboxBundle struct {
	pool  *pgxpool.Pool
	inbox *postgres.Inbox
}

func setupInbox(t testing.TB, cfg *postgres.InboxConfig) *inboxBundle {
	t.Helper()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	_, err := pool.Exec(ctx, `CREATE TABLE effects (key text NOT NULL)`)
	require.NoError(t, err)
	inbox, err := postgres.NewInbox(pool, cfg)
	require.NoError(t, err)
	return &inboxBundle{pool: pool, inbox: inbox}
}

// write stores an effect with the transaction in ctx, and fails without
// one: the handler must run inside the inbox's unit of work.
func write(ctx context.Context, key string) error {
	tx, ok := postgres.TxFromContext(ctx)
	if !ok {
		return errors.New("no transaction in the handler's context")
	}
	_, err := tx.Exec(ctx, `INSERT INTO effects (key) VALUES ($1)`, key)
	return err
}

func (b *inboxBundle) effects(t testing.TB) []string {
	t.Helper()
	return column[string](t, b.pool, `SELECT key FROM effects`)
}

func (b *inboxBundle) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

// The PostgreSQL inbox passes the inbox suite, with the handler's own
// writes in its transaction.
func TestInboxSuite(t *testing.T) {
	t.Parallel()
	eventbustest.RunInbox(t, func(t *testing.T) eventbustest.InboxHarness {
		b := setupInbox(t, nil)
		return eventbustest.InboxHarness{Inbox: b.inbox, Write: write, Effects: b.effects, Atomic: true}
	})
}

type thingHappened struct{ N int }

func (thingHappened) EventName() string { return "test.thing_happened" }

func envelope(id string) aggregate.Envelope {
	return aggregate.Envelope{ID: id, Name: "test.thing_happened", AggregateType: "thing", AggregateID: "t-1", Version: 1, Payload: thingHappened{1}}
}

// The handler runs in a unit of work: a UnitOfWork.Do inside it joins,
// and so do the repositories. Called inside a unit of work, the inbox
// joins that one, and a failing handler makes it roll back.
func TestInboxRunsTheHandlerInAUnitOfWork(t *testing.T) {
	t.Parallel()
	b := setupInbox(t, nil)
	ctx := context.Background()
	uow, err := postgres.NewUnitOfWork(b.pool)
	require.NoError(t, err)

	applied, err := b.inbox.Process(ctx, "h", envelope("e-1"), func(ctx context.Context) error {
		outer, _ := postgres.TxFromContext(ctx)
		return uow.Do(ctx, func(ctx context.Context) error {
			inner, _ := postgres.TxFromContext(ctx)
			if inner != outer {
				return errors.New("a unit of work inside the handler began a transaction of its own")
			}
			return write(ctx, "joined")
		})
	})
	require.NoError(t, err)
	require.True(t, applied)
	require.Equal(t, []string{"joined"}, b.effects(t))

	// The inbox inside a command's unit of work: one transaction.
	boom := errors.New("boom")
	err = uow.Do(ctx, func(ctx context.Context) error {
		if err := write(ctx, "before"); err != nil {
			return err
		}
		_, err := b.inbox.Process(ctx, "h", envelope("e-2"), func(ctx context.Context) error {
			if err := write(ctx, "inside"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			return fmt.Errorf("inbox: %w, want boom", err)
		}
		return nil // the caller swallows the failure: the unit still rolls back
	})
	require.ErrorIs(t, err, postgres.ErrRollbackOnly)
	require.Equal(t, []string{"joined"}, b.effects(t), "nothing of the failed unit stays")
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM dddkit_inbox WHERE event_id = 'e-2'`))
}

// A batch first inserts its inbox rows as if all were new. A redelivered
// event makes that insert fail; the batch then runs again skipping it,
// and so does the handler's next batch, until one has no duplicate. A
// batch inside a caller's unit of work skips duplicates from the start:
// a failed insert would end the caller's transaction.
func TestInboxBatchFallsBackOnRedeliveries(t *testing.T) {
	t.Parallel()
	b := setupInbox(t, nil)
	ctx := context.Background()
	batch := func(ctx context.Context, handler string, ids ...string) []string {
		t.Helper()
		envs := make([]aggregate.Envelope, len(ids))
		for k, id := range ids {
			envs[k] = envelope(id)
		}
		var got []string
		require.NoError(t, b.inbox.ProcessBatch(ctx, handler, envs, func(ctx context.Context, fresh []aggregate.Envelope) error {
			for _, e := range fresh {
				got = append(got, e.ID)
				if err := write(ctx, handler+"/"+e.ID); err != nil {
					return err
				}
			}
			return nil
		}))
		return got
	}

	require.Equal(t, []string{"b", "a"}, batch(ctx, "h", "b", "a", "b"))
	require.False(t, b.inbox.Wary("h"), "a batch of new events keeps the plain insert")
	require.Equal(t, []string{"c"}, batch(ctx, "h", "c", "a"))
	require.True(t, b.inbox.Wary("h"), "after a redelivery the next batch skips duplicates from the start")
	require.Equal(t, []string{"e"}, batch(ctx, "h", "b", "e"))
	require.True(t, b.inbox.Wary("h"), "still wary after a second batch with a duplicate")
	require.Equal(t, []string{"d"}, batch(ctx, "h", "d"))
	require.False(t, b.inbox.Wary("h"), "a batch without duplicates goes back to the plain insert")
	require.Equal(t, 5, b.count(t, `SELECT count(*) FROM dddkit_inbox WHERE handler = 'h'`))

	uow, err := postgres.NewUnitOfWork(b.pool)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, batch(ctx, "joined", "a"))
	require.NoError(t, uow.Do(ctx, func(ctx context.Context) error {
		if err := write(ctx, "before"); err != nil {
			return err
		}
		if got := batch(ctx, "joined", "a", "x"); !slices.Equal(got, []string{"x"}) {
			return fmt.Errorf("the joined batch applied %v, want [x]", got)
		}
		return write(ctx, "after")
	}))
	effects := b.effects(t)
	slices.Sort(effects)
	require.Equal(t, []string{"after", "before", "h/a", "h/b", "h/c", "h/d", "h/e", "joined/a", "joined/x"}, effects,
		"each event applied once; the caller's unit kept its own writes")
}

// A database that cannot be reached, or is not migrated, is an outage: the
// event waits (ErrUnavailable) instead of going to the dead-letter topic.
func TestInboxOutages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noop := func(context.Context) error { return nil }

	down := pgtest.Pool(t)
	down.Close()
	inbox, err := postgres.NewInbox(down, nil)
	require.NoError(t, err)
	_, err = inbox.Process(ctx, "h", envelope("e-1"), noop)
	require.ErrorIs(t, err, eventbus.ErrUnavailable)
	err = inbox.ProcessBatch(ctx, "h", []aggregate.Envelope{envelope("e-1")}, func(context.Context, []aggregate.Envelope) error { return nil })
	require.ErrorIs(t, err, eventbus.ErrUnavailable)

	bare := pgtest.Pool(t) // never migrated
	inbox, err = postgres.NewInbox(bare, nil)
	require.NoError(t, err)
	_, err = inbox.Process(ctx, "h", envelope("e-1"), noop)
	require.ErrorIs(t, err, postgres.ErrNotMigrated)
	require.ErrorIs(t, err, eventbus.ErrUnavailable)
	err = inbox.ProcessBatch(ctx, "h", []aggregate.Envelope{envelope("e-1")}, func(context.Context, []aggregate.Envelope) error { return nil })
	require.ErrorIs(t, err, postgres.ErrNotMigrated)
}

// The inbox uses the table Tables names, in the schema Tables names.
func TestInboxTables(t *testing.T) {
	t.Parallel()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	tables := postgres.Tables{Schema: dddkittest.UniqueName(t), Inbox: "handled_events"}
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), `DROP SCHEMA `+pgx.Identifier{tables.Schema}.Sanitize()+` CASCADE`)
		require.NoError(t, err)
	})
	require.NoError(t, postgres.Migrate(ctx, pool, &tables))
	inbox, err := postgres.NewInbox(pool, &postgres.InboxConfig{Tables: tables})
	require.NoError(t, err)
	applied, err := inbox.Process(ctx, "h", envelope("e-1"), func(context.Context) error { return nil })
	require.NoError(t, err)
	require.True(t, applied)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{tables.Schema, "handled_events"}.Sanitize()).Scan(&n))
	require.Equal(t, 1, n)
}

func TestInboxCleanupDeletesExpiredRows(t *testing.T) {
	t.Parallel()
	b := setupInbox(t, &postgres.InboxConfig{Retention: time.Hour, CleanupBatch: 3})
	ctx := context.Background()
	noop := func(context.Context) error { return nil }
	for i := range 10 {
		_, err := b.inbox.Process(ctx, "h", envelope(fmt.Sprint("ev-", i)), noop)
		require.NoError(t, err)
	}
	_, err := b.pool.Exec(ctx, `UPDATE dddkit_inbox SET processed_at = now() - interval '2 hours' WHERE event_id <> 'ev-9'`)
	require.NoError(t, err)
	n, err := b.inbox.Cleanup(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(9), n, "three batches of three")
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM dddkit_inbox`))

	// An event whose row was cleaned up is applied again: retention
	// bounds how late a duplicate may come.
	applied, err := b.inbox.Process(ctx, "h", envelope("ev-0"), noop)
	require.NoError(t, err)
	require.True(t, applied)

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, b.inbox.RunCleanup(cctx))
}

func TestInboxConfigValidate(t *testing.T) {
	t.Parallel()
	err := (&postgres.InboxConfig{Retention: -1, CleanupInterval: -1, CleanupBatch: -1, Tables: postgres.Tables{Inbox: "dddkit_outbox"}}).Validate()
	for _, want := range []string{"Retention", "CleanupInterval", "CleanupBatch", "Tables.Outbox and Tables.Inbox"} {
		require.ErrorContains(t, err, want)
	}
	require.NoError(t, (*postgres.InboxConfig)(nil).Validate())
	_, err = postgres.NewInbox(nil, &postgres.InboxConfig{CleanupBatch: -1})
	require.ErrorContains(t, err, "nil DB")
	require.ErrorContains(t, err, "CleanupBatch")
}

// An inbox batch is two round trips: BEGIN with the insert of its rows,
// then the statements its handler queued with QueueExec, with the COMMIT.
// A queued statement that fails rolls the batch back, rows and effects:
// its error is the batch's.
func TestInboxBatchSendsQueuedWritesWithItsCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b, log := setupTraced(t)
	_, err := b.pool.Exec(ctx, `CREATE TABLE effects (key text PRIMARY KEY)`)
	require.NoError(t, err)
	inbox, err := postgres.NewInbox(b.pool, nil)
	require.NoError(t, err)
	handle := func(ids ...string) error {
		envs := make([]aggregate.Envelope, len(ids))
		for k, id := range ids {
			envs[k] = envelope(id)
		}
		return inbox.ProcessBatch(ctx, "h", envs, func(ctx context.Context, fresh []aggregate.Envelope) error {
			for _, e := range fresh {
				if err := postgres.QueueExec(ctx, `INSERT INTO effects (key) VALUES ($1)`, e.ID); err != nil {
					return err
				}
			}
			return nil
		})
	}
	log.take()
	require.NoError(t, handle("a", "b", "c"))
	require.Equal(t, []string{"BEGIN+INSERT", "BATCH+COMMIT"}, log.take())
	require.ElementsMatch(t, []string{"a", "b", "c"}, column[string](t, b.pool, `SELECT key FROM effects`))

	// "x" is an effect already: the second insert fails the batch.
	_, err = b.pool.Exec(ctx, `INSERT INTO effects (key) VALUES ('x')`)
	require.NoError(t, err)
	log.take()
	err = handle("d", "x")
	require.ErrorContains(t, err, "queued statement 2 of 2")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "23505", pgErr.Code)
	require.Equal(t, []string{"BEGIN+INSERT", "BATCH+COMMIT", "ROLLBACK"}, log.take())
	require.Zero(t, column[int](t, b.pool, `SELECT count(*)::int FROM dddkit_inbox WHERE event_id IN ('d', 'x')`)[0], "the batch's rows rolled back")
	require.ElementsMatch(t, []string{"a", "b", "c", "x"}, column[string](t, b.pool, `SELECT key FROM effects`))
	require.Zero(t, b.pool.Stat().AcquiredConns(), "the connection is back in the pool")
}
