package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// setupNotified returns a bundle, its event store, and a connection that
// LISTENs on both channels of its schema: the outbox's and the event
// store's (both, their names).
func setupNotified(t *testing.T) (b pgBundle, store *postgres.EventStore[*repositorytest.Counter], conn *pgxpool.Conn, both []string) {
	t.Helper()
	b = setupPG(t, repositorytest.Registry(t))
	store = newEventStore(t, b)
	conn, err := b.pool.Acquire(t.Context())
	require.NoError(t, err)
	t.Cleanup(conn.Release)
	for _, table := range []string{postgres.DefaultOutboxTable, postgres.DefaultEventsTable} {
		both = append(both, b.schema+"."+table)
		_, err := conn.Exec(t.Context(), `LISTEN `+pgx.Identifier{both[len(both)-1]}.Sanitize())
		require.NoError(t, err)
	}
	return b, store, conn, both
}

// notifications returns the channels conn is notified on within wait by
// the outbox's writers (the relays' notices to each other left out).
func notifications(t *testing.T, conn *pgxpool.Conn, wait time.Duration) []string {
	t.Helper()
	var got []string
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	for {
		n, err := conn.Conn().WaitForNotification(ctx)
		if errors.Is(err, context.DeadlineExceeded) {
			return got
		}
		require.NoError(t, err)
		if n.Payload == postgres.RebalanceNotice {
			continue // a relay's, not a write's
		}
		got = append(got, n.Channel)
	}
}

// recordSettings adds a trigger of the test's own to the outbox of b that
// records the setting each outbox insert had at its end, when the
// outbox's trigger reads it, and returns a function that reads them.
func recordSettings(t *testing.T, b pgBundle) func() []string {
	t.Helper()
	_, err := b.pool.Exec(t.Context(), `CREATE TABLE seen (n serial, setting text);
CREATE FUNCTION seen_setting() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO seen (setting) VALUES (coalesce(current_setting('dddkit.notify', true), ''));
	RETURN NULL;
END $$;
CREATE TRIGGER seen AFTER INSERT ON dddkit_outbox FOR EACH STATEMENT EXECUTE FUNCTION seen_setting()`)
	require.NoError(t, err)
	return func() []string { return column[string](t, b.pool, `SELECT setting FROM seen ORDER BY n`) }
}

// A unit of work on a pool has each of its writes to the outbox and the
// event store tell the NOTIFY triggers to leave its transaction alone,
// and notifies their readers once it committed: one notification each,
// after the commit, however many statements wrote. A unit that writes
// neither runs no statement for it.
func TestUnitOfWorkNotifiesAfterCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b, store, conn, both := setupNotified(t)
	repo := newRepo(t, b, nil)
	seen := recordSettings(t, b)

	require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error {
		for _, id := range []string{"n1", "n2"} {
			if err := store.Save(ctx, mustCounter(t, id)); err != nil {
				return err
			}
		}
		if err := repo.Save(ctx, mustCounter(t, "r1")); err != nil {
			return err
		}
		return b.outbox.Write(ctx, aggregate.Envelope{ID: "019ad0c4-5d2e-7c41-9a57-2f0b8e6c1d3b",
			Name: repositorytest.CounterAdded{}.EventName(), AggregateType: repositorytest.CounterType, AggregateID: "w1",
			Version: 2, OccurredAt: time.Now(), Payload: repositorytest.CounterAdded{N: 1}})
	}))
	got := notifications(t, conn, 2*time.Second)
	require.ElementsMatch(t, both, got, "one notification per channel, after the commit")
	require.Equal(t, []string{"after_commit", "after_commit", "after_commit", "after_commit"}, seen(),
		"the triggers were told to skip every write: two event store saves, a repository save, Outbox.Write")

	// A unit that writes only a table of its own leaves the setting alone.
	var setting *string
	require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error {
		tx, _ := postgres.TxFromContext(ctx)
		if _, err := tx.Exec(ctx, `CREATE TABLE own_rows (k text)`); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT current_setting('dddkit.notify', true)`).Scan(&setting)
	}))
	require.True(t, setting == nil || *setting == "", "the setting of a unit without outbox writes: %v", setting)
	require.Empty(t, notifications(t, conn, 200*time.Millisecond))

	// A unit that rolls back notifies nobody.
	boom := errors.New("boom")
	require.ErrorIs(t, b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, store.Save(ctx, mustCounter(t, "n3")))
		return boom
	}), boom)
	require.Empty(t, notifications(t, conn, 500*time.Millisecond), "rolled back")
}

// The triggers skip a transaction that set the setting, and notify every
// other one at its commit: here a unit of work inside a caller's
// transaction, which the unit cannot see commit.
func TestNotifyTriggerSkipsOnlyTransactionsThatNotifyAfterCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b, store, conn, both := setupNotified(t)

	inCallerTx := func(id string, skip bool) {
		tx, err := b.pool.Begin(ctx)
		require.NoError(t, err)
		defer func() { _ = tx.Rollback(ctx) }()
		if skip {
			_, err := tx.Exec(ctx, `SELECT set_config('dddkit.notify', 'after_commit', true)`)
			require.NoError(t, err)
		}
		uow, err := postgres.NewUnitOfWork(tx)
		require.NoError(t, err)
		require.NoError(t, uow.Do(ctx, func(ctx context.Context) error { return store.Save(ctx, mustCounter(t, id)) }))
		require.Empty(t, notifications(t, conn, 200*time.Millisecond), "nothing before the caller commits")
		require.NoError(t, tx.Commit(ctx))
	}

	inCallerTx("c1", false)
	require.ElementsMatch(t, both, notifications(t, conn, 2*time.Second), "the triggers notify the caller's transaction")

	inCallerTx("c2", true)
	require.Empty(t, notifications(t, conn, 500*time.Millisecond), "the triggers skip a transaction that set dddkit.notify")

}

// A save on its own on a pool (the repository's one statement, the event
// store's one batch) and Outbox.Write on its own tell the triggers to
// skip their implicit transaction and notify after it; on a connection,
// which a notifier must not share, the triggers notify.
func TestSaveOnItsOwnNotifiesAfterCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b, store, conn, both := setupNotified(t)
	repo := newRepo(t, b, nil)
	seen := recordSettings(t, b)

	require.NoError(t, repo.Save(ctx, mustCounter(t, "r1")))
	require.Equal(t, []string{both[0]}, notifications(t, conn, 2*time.Second), "the repository: the outbox's readers")
	require.NoError(t, store.Save(ctx, mustCounter(t, "e1")))
	require.ElementsMatch(t, both, notifications(t, conn, 2*time.Second), "the event store: both")
	require.NoError(t, b.outbox.Write(ctx, aggregate.Envelope{ID: "019ad0c4-5d2e-7c41-9a57-2f0b8e6c1d3a",
		Name: repositorytest.CounterAdded{}.EventName(), AggregateType: repositorytest.CounterType, AggregateID: "w1",
		Version: 2, OccurredAt: time.Now(), Payload: repositorytest.CounterAdded{N: 1}}))
	require.Equal(t, []string{both[0]}, notifications(t, conn, 2*time.Second), "Outbox.Write: the outbox's readers")
	require.Equal(t, []string{"after_commit", "after_commit", "after_commit"}, seen(), "the triggers were told to skip all three")

	c, err := b.pool.Acquire(ctx)
	require.NoError(t, err)
	defer c.Release()
	onConn, err := postgres.NewRepository(c.Conn(), b.outbox, repositorytest.Mapping(), nil)
	require.NoError(t, err)
	require.NoError(t, onConn.Save(ctx, mustCounter(t, "r2")))
	require.Equal(t, []string{both[0]}, notifications(t, conn, 2*time.Second), "on a connection: the trigger")
	require.Equal(t, []string{"after_commit", "after_commit", "after_commit", ""}, seen())
}

// When the Outbox's relay in this process leads every shard, a write on
// its own (or a unit of work) wakes it directly and sends no NOTIFY; once
// another relay leads some of the shards, the writes notify through
// PostgreSQL again, so that relay hears of them too. The relays poll only
// every hour: what they publish, a wake made them read.
func TestOutboxWritesWakeTheirOwnRelayLeadingEveryShard(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := newOutboxBundle(t, &postgres.OutboxConfig{Shards: 4})
	conn, err := b.pool.Acquire(ctx)
	require.NoError(t, err)
	t.Cleanup(conn.Release)
	_, err = conn.Exec(ctx, `LISTEN `+pgx.Identifier{b.schema + "." + postgres.DefaultOutboxTable}.Sanitize())
	require.NoError(t, err)

	rec := &outboxtest.Recorder{}
	start := func(ob *postgres.Outbox) {
		r, err := outbox.NewRelay(ob, rec, b.reg, &outbox.RelayConfig{PollInterval: time.Hour})
		require.NoError(t, err)
		startRelay(t, r)
	}
	start(b.ob)
	testinfra.Eventually(t, 30*time.Second, func() bool { return len(b.ob.Shards()) == 4 }, "the relay leads every shard")

	for v := range int64(3) {
		b.write(t, cartEvent("solo", v+1))
		testinfra.Eventually(t, 10*time.Second, func() bool { return rec.Len() == int(v)+1 }, "published: %d", rec.Len())
	}
	require.Empty(t, notifications(t, conn, 300*time.Millisecond), "the relay was woken in the process, not by NOTIFY")

	other := b.open(t, &postgres.OutboxConfig{Shards: 4})
	start(other)
	testinfra.Eventually(t, 30*time.Second, func() bool { return len(b.ob.Shards()) == 2 && len(other.Shards()) == 2 }, "two relays, two shards each: %v %v", b.ob.Shards(), other.Shards())
	// Carts on every shard, so that both relays have rows to read.
	events := cartHistory(20, 1)
	b.write(t, events...)
	require.Equal(t, []string{b.schema + "." + postgres.DefaultOutboxTable}, notifications(t, conn, 2*time.Second), "a NOTIFY for the other relay")
	testinfra.Eventually(t, 10*time.Second, func() bool { return rec.Len() == 3+len(events) }, "published: %d", rec.Len())
}
