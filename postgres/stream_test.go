package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

func newStream(t testing.TB, b pgBundle, reg *eventbus.Registry) *postgres.EventStream {
	t.Helper()
	// A MaxWait beyond every test's timeout: a Wait that returns in time
	// was woken by a NOTIFY.
	s, err := postgres.NewEventStream(b.pool, reg, &postgres.EventStreamConfig{MaxWait: time.Hour})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func TestEventStreamSuite(t *testing.T) {
	t.Parallel()
	repositorytest.RunStream(t, func(t *testing.T, reg *eventbus.Registry) repositorytest.StreamHarness {
		b := setupPG(t, reg)
		return repositorytest.StreamHarness{
			Stream: newStream(t, b, reg),
			NewStore: func(t testing.TB, m repository.EventMapping[*repositorytest.Counter]) repository.Repository[*repositorytest.Counter] {
				s, err := postgres.NewEventStore(b.pool, b.outbox, m, nil)
				require.NoError(t, err)
				return s
			},
		}
	})
}

func TestNewEventStreamValidates(t *testing.T) {
	t.Parallel()
	_, err := postgres.NewEventStream(nil, nil, &postgres.EventStreamConfig{MaxWait: -1, Tables: postgres.Tables{Events: "same", Inbox: "same"}})
	for _, want := range []string{"nil DB", "nil Registry", "MaxWait", "both"} {
		require.ErrorContains(t, err, want)
	}
}

// The late-commit scenario: writer A inserts its events and keeps its
// transaction open; writer B, whose transaction is older (it wrote a
// state-stored aggregate first, so it holds the older transaction ID),
// then saves its events and commits. A reader must not see B's events
// while A's, inserted before them, can still commit: that is the case
// that defeats the transaction-ID (xmin) technique. With the append
// lock, B waits for A; the reader sees nothing, then A, then B, and a
// reader that checkpoints on what it saw misses nothing.
func TestEventStreamOlderTransactionInsertsLater(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	reg := repositorytest.Registry(t)
	b := setupPG(t, reg)
	events := newEventStore(t, b)
	states := newRepo(t, b, nil)
	stream := newStream(t, b, reg)
	var pidA uint32

	bStarted, aInserted, bSaved := make(chan struct{}), make(chan struct{}), make(chan struct{})
	releaseA := make(chan struct{})
	var onceA sync.Once
	openA := func() { onceA.Do(func() { close(releaseA) }) }
	var wg sync.WaitGroup
	defer wg.Wait()
	defer openA() // on failure too: no transaction is left open
	var errA, errB error
	wg.Go(func() {
		errB = b.uow.Do(ctx, func(ctx context.Context) error {
			if err := states.Save(ctx, mustCounter(t, "state-b")); err != nil { // takes B's transaction ID
				return err
			}
			close(bStarted)
			<-aInserted
			return events.Save(ctx, mustCounter(t, "b")) // waits for A's commit
		})
		close(bSaved) // B committed (or failed)
	})
	wg.Go(func() {
		<-bStarted
		errA = b.uow.Do(ctx, func(ctx context.Context) error {
			c := mustCounter(t, "a")
			if err := c.Add(1); err != nil {
				return err
			}
			if err := events.Save(ctx, c); err != nil {
				return err
			}
			tx, _ := postgres.TxFromContext(ctx)
			if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pidA); err != nil {
				return err
			}
			close(aInserted)
			<-releaseA
			return nil
		})
	})
	<-aInserted
	waitForBlocked(t, b, pidA, bSaved)
	got, err := stream.Read(ctx, 0, repository.StreamFilter{}, 100)
	require.NoError(t, err)
	require.Empty(t, got, "nothing may be read while A, which inserted first, is open")
	head, err := stream.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)

	openA()
	wg.Wait()
	require.NoError(t, errA)
	require.NoError(t, errB)
	all, err := stream.Read(ctx, 0, repository.StreamFilter{}, 100)
	require.NoError(t, err)
	var ids []string
	for _, e := range all {
		ids = append(ids, e.Event.AggregateID)
	}
	require.Equal(t, []string{"a", "a", "b"}, ids, "A's events come first: B took its position after A committed")
}

// waitForBlocked waits until a session waits for a lock that the
// session pid holds (a writer blocked on the append lock), or until saved
// is closed (the writer was not blocked).
func waitForBlocked(t *testing.T, b pgBundle, pid uint32, saved <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		var n int
		require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, int64(pid)).Scan(&n))
		if n > 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("no writer waits for the append lock")
		case <-saved:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Many writers whose transactions interleave (random pauses before and
// after their inserts, inside the transaction) and a reader that follows
// the stream from the start: it sees every event exactly once, in
// position order, each aggregate's in version order.
func TestEventStreamFollowerSeesConcurrentWritersOnce(t *testing.T) {
	t.Parallel()
	const writers, txPerWriter, eventsPerTx = 8, 100, 5 // 8 × 500 events
	reg := repositorytest.Registry(t)
	b := setupPG(t, reg)
	store := newEventStore(t, b)
	stream := newStream(t, b, reg)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	total := writers * (1 + txPerWriter*eventsPerTx)

	var (
		mu   sync.Mutex
		got  []repository.StoredEvent
		done = make(chan error, 1)
	)
	go func() {
		done <- repository.Follow(ctx, stream, 0, repository.StreamFilter{}, 64, func(_ context.Context, events []repository.StoredEvent) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, events...)
			return nil
		})
	}()
	pause := func() { time.Sleep(time.Duration(rand.IntN(1500)) * time.Microsecond) }
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			id := fmt.Sprintf("w%d", w)
			err := store.Save(ctx, mustCounter(t, id))
			for i := 0; err == nil && i < txPerWriter; i++ {
				err = b.uow.Do(ctx, func(ctx context.Context) error {
					pause()
					err := store.Update(ctx, id, func(c *repositorytest.Counter) error {
						for range eventsPerTx {
							if err := c.Add(1); err != nil {
								return err
							}
						}
						return nil
					})
					if rand.IntN(4) == 0 {
						pause() // after the insert: the next writer waits
					}
					return err
				})
			}
			if err != nil {
				t.Errorf("writer %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	// Every write has committed: the follower reaches the head, and by
	// then it must have seen every event.
	head, err := stream.Head(ctx)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0 && got[len(got)-1].Position >= head
	}, time.Minute, 10*time.Millisecond, "the follower reaches the head")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, total, len(got), "every event, once")
	seen := make(map[string]bool, total)
	versions := map[string]int64{}
	var last int64
	for _, e := range got {
		require.Greater(t, e.Position, last, "position order")
		last = e.Position
		require.False(t, seen[e.Event.ID], "event %s seen twice", e.Event.ID)
		seen[e.Event.ID] = true
		require.Equal(t, versions[e.Event.AggregateID]+1, e.Event.Version, "%s in version order", e.Event.AggregateID)
		versions[e.Event.AggregateID] = e.Event.Version
	}
	for w := range writers {
		require.Equal(t, int64(1+txPerWriter*eventsPerTx), versions[fmt.Sprintf("w%d", w)])
	}
}

// An events table of an older dddkit (schema version 4: no positions)
// migrates: its rows get positions in the order they were recorded, and
// the stream reads them, then the ones saved afterwards.
func TestEventStreamReadsMigratedLegacyRows(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool, schema := pgtest.Schema(t)
	steps, err := postgres.Migrations(&postgres.Tables{Schema: schema})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `CREATE TABLE dddkit_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	for _, m := range steps[:4] {
		_, err := pool.Exec(ctx, m.SQL)
		require.NoError(t, err, "step %d", m.Version)
		_, err = pool.Exec(ctx, `INSERT INTO dddkit_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
		require.NoError(t, err)
	}
	// Rows as the old EventStore wrote them: c2 was recorded first, then
	// c1 (two events in one transaction).
	_, err = pool.Exec(ctx, `INSERT INTO aggregate_events (type, id, version, event_id, name, payload, occurred_at, recorded_at) VALUES
		($1, 'c1', 1, 'e-c1-1', 'repositorytest.counter_created', '{"Name":"one"}', now(), now() - interval '1 minute'),
		($1, 'c1', 2, 'e-c1-2', 'repositorytest.counter_added', '{"N":5}', now(), now() - interval '1 minute'),
		($1, 'c2', 1, 'e-c2-1', 'repositorytest.counter_created', '{"Name":"two"}', now(), now() - interval '2 minutes')`,
		repositorytest.CounterType)
	require.NoError(t, err)

	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	reg := repositorytest.Registry(t)
	b := pgBundle{pool: pool, schema: schema}
	b.outbox, err = postgres.NewOutbox(pool, reg, nil)
	require.NoError(t, err)
	stream := newStream(t, b, reg)
	got, err := stream.Read(ctx, 0, repository.StreamFilter{}, 10)
	require.NoError(t, err)
	var ids []string
	var positions []int64
	for _, e := range got {
		ids = append(ids, e.Event.ID)
		positions = append(positions, e.Position)
	}
	require.Equal(t, []string{"e-c2-1", "e-c1-1", "e-c1-2"}, ids)
	require.Equal(t, []int64{1, 2, 3}, positions)
	require.Equal(t, repositorytest.CounterAdded{N: 5}, got[2].Event.Payload)

	// New saves continue after the migrated rows.
	store := newEventStore(t, b)
	require.NoError(t, store.Update(ctx, "c1", func(c *repositorytest.Counter) error { return c.Add(1) }))
	more, err := stream.Read(ctx, 3, repository.StreamFilter{}, 10)
	require.NoError(t, err)
	require.Len(t, more, 1)
	require.Equal(t, int64(4), more[0].Position)
	loaded, err := store.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, 6, loaded.Value())
}

// Wait returns as soon as a write commits on another connection, not
// after its MaxWait (an hour here); several waiters share the one
// listener.
func TestEventStreamWaitWokenByCommit(t *testing.T) {
	t.Parallel()
	reg := repositorytest.Registry(t)
	b := setupPG(t, reg)
	store := newEventStore(t, b)
	stream := newStream(t, b, reg)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = stream.Wait(ctx, 0) })
	}
	require.NoError(t, store.Save(ctx, mustCounter(t, "c1")))
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err, "woken by the commit before the context's 30s")
	}
	stream.Close()
	require.Error(t, stream.Wait(ctx, 0), "Wait fails after Close")
}

// On a DB that cannot lend a connection for LISTEN (a transaction here),
// Wait falls back to waiting MaxWait, and Read sees the transaction's
// own events.
func TestEventStreamWaitWithoutPool(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	reg := repositorytest.Registry(t)
	b := setupPG(t, reg)
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	ob, err := postgres.NewOutbox(tx, reg, nil)
	require.NoError(t, err)
	store, err := postgres.NewEventStore(tx, ob, repositorytest.EventMapping(), nil)
	require.NoError(t, err)
	require.NoError(t, store.Save(ctx, mustCounter(t, "c1")))
	stream, err := postgres.NewEventStream(tx, reg, &postgres.EventStreamConfig{MaxWait: 20 * time.Millisecond})
	require.NoError(t, err)
	defer stream.Close()
	head, err := stream.Head(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Wait(ctx, head), "returns after MaxWait")
	got, err := stream.Read(ctx, 0, repository.StreamFilter{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 1)
}
