package postgres_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// statementLog records what a pool sends: each query (by its first
// word) and each batch, in order.
type statementLog struct {
	mu   sync.Mutex
	sent []string
}

func (l *statementLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, s)
}

// take returns what was sent since the last take.
func (l *statementLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sent
	l.sent = nil
	return s
}

// TraceQueryStart logs the first word of each statement. It leaves out
// the notification of a unit: it is sent after the unit committed, on
// another connection, at a moment of its own.
func (l *statementLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if !strings.Contains(d.SQL, "pg_notify(") {
		l.add(strings.ToUpper(strings.Fields(d.SQL)[0]))
	}
	return ctx
}

func (*statementLog) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart logs "BATCH" for a batch; for one that begins a
// unit's transaction (BEGIN queued before the unit's first statement),
// "BEGIN+" and the first word of that statement, or "BEGIN+BATCH" when
// the unit's first statement was a batch of several.
// A batch that ends with the unit's COMMIT (statements held back for
// it) ends in "+COMMIT": "BEGIN+WITH+COMMIT" is a unit of one save in one
// round trip, "BATCH+COMMIT" or "INSERT+COMMIT" what a begun unit sent
// with its COMMIT.
func (l *statementLog) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	qs := d.Batch.QueuedQueries
	commit := ""
	if n := len(qs); n > 1 && qs[n-1].SQL == "commit" {
		qs, commit = qs[:n-1], "+COMMIT"
	}
	begin := len(qs) > 0 && qs[0].SQL == "begin"
	if begin {
		qs = qs[1:]
	}
	label := "BATCH"
	if len(qs) == 1 && (begin || commit != "") {
		label = strings.ToUpper(strings.Fields(qs[0].SQL)[0])
	}
	if begin {
		label = "BEGIN+" + label
	}
	l.add(label + commit)
	return ctx
}

func (*statementLog) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (*statementLog) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// setupTraced is setupPG on a pool whose statements are logged.
func setupTraced(t *testing.T) (pgBundle, *statementLog) {
	t.Helper()
	dbURL, schema := pgtest.SchemaURL(t)
	cfg, err := pgxpool.ParseConfig(dbURL)
	require.NoError(t, err)
	log := &statementLog{}
	cfg.ConnConfig.Tracer = log
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, postgres.Migrate(t.Context(), pool, nil))
	ob, err := postgres.NewOutbox(pool, repositorytest.Registry(t), nil)
	require.NoError(t, err)
	uow, err := postgres.NewUnitOfWork(pool)
	require.NoError(t, err)
	log.take()
	return pgBundle{pool: pool, schema: schema, outbox: ob, uow: uow}, log
}

// A save on its own is one statement (or one batch) in PostgreSQL's
// implicit transaction: no BEGIN, no COMMIT, one round trip. In a unit
// of work it is held back for the unit's COMMIT (and BEGIN, when nothing
// began the transaction): one round trip too; a save with unique keys is
// not held back.
func TestSaveIsOneStatement(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b, log := setupTraced(t)
	plainMapping := repositorytest.Mapping()
	plainMapping.Keys = nil
	plain, err := postgres.NewRepository(b.pool, b.outbox, plainMapping, nil)
	require.NoError(t, err)
	keyed := newRepo(t, b, nil)
	store := newEventStore(t, b)
	// The outbox finds its table once (the notification after a unit's
	// commit needs its channel): before the statements are logged.
	_, err = b.outbox.Stats(ctx)
	require.NoError(t, err)
	log.take()

	for _, tt := range []struct {
		name string
		repo repository.Repository[*repositorytest.Counter]
		want string
		held bool // held back for the unit's COMMIT
	}{
		{"Repository", plain, "WITH", true},
		{"RepositoryWithKeys", keyed, "WITH", false},
		{"EventStore", store, "BATCH", true},
	} {
		c := mustCounter(t, tt.name)
		require.NoError(t, tt.repo.Save(ctx, c), tt.name)
		require.Equal(t, []string{tt.want}, log.take(), "%s: insert", tt.name)

		require.NoError(t, c.Add(1))
		require.NoError(t, c.Add(2))
		require.NoError(t, tt.repo.Save(ctx, c), tt.name)
		require.Equal(t, []string{tt.want}, log.take(), "%s: update with 2 events", tt.name)

		// Update reads, then saves on its own: two round trips.
		require.NoError(t, tt.repo.Update(ctx, tt.name, func(c *repositorytest.Counter) error { return c.Add(3) }))
		require.Equal(t, tt.want, log.take()[1], "%s: Update's save", tt.name)

		got, err := tt.repo.Load(ctx, tt.name)
		require.NoError(t, err)
		require.Equal(t, 6, got.Value(), tt.name)
		require.Equal(t, int64(4), got.Version(), tt.name)
		log.take()

		// In a unit of work on a pool, the save is held back for the
		// COMMIT, and BEGIN goes with them: one round trip. A save with
		// keys is not: the save with BEGIN, then the COMMIT.
		other := mustCounter(t, tt.name+"-unit")
		require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error { return tt.repo.Save(ctx, other) }))
		want := []string{"BEGIN+" + tt.want + "+COMMIT"}
		if !tt.held {
			want = []string{"BEGIN+" + tt.want, "COMMIT"}
		}
		require.Equal(t, want, log.take(), "%s: in a unit", tt.name)

		// An Update in a unit: the read (with the BEGIN), then the save
		// with the COMMIT (or then the COMMIT).
		require.NoError(t, b.uow.Do(ctx, func(ctx context.Context) error {
			return tt.repo.Update(ctx, other.ID(), func(c *repositorytest.Counter) error { return c.Add(1) })
		}))
		want = []string{"BEGIN+SELECT", tt.want + "+COMMIT"}
		if !tt.held {
			want = []string{"BEGIN+SELECT", tt.want, "COMMIT"}
		}
		require.Equal(t, want, log.take(), "%s: Update in a unit", tt.name)
	}
	versions := map[string][]int64{}
	for _, e := range b.outboxEvents(t) {
		versions[e.AggregateID] = append(versions[e.AggregateID], e.Version)
	}
	for _, id := range []string{"Repository", "RepositoryWithKeys", "EventStore"} {
		require.Equal(t, []int64{1, 2, 3, 4}, versions[id], "the outbox rows of %s", id)
		require.Equal(t, []int64{1, 2}, versions[id+"-unit"], "the outbox rows of %s-unit", id)
	}
}

// A key taken by another aggregate in the same unit of work fails the
// save with the key named, and the unit rolls back.
func TestSaveTakenKeyInAUnit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	repo := newRepo(t, b, nil)
	c1, c2 := mustCounter(t, "c1"), mustCounter(t, "c2")
	require.NoError(t, c2.Rename("c1"))
	var saveErr error
	err := b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, repo.Save(ctx, c1))
		// With keys, a save is not held back: its error comes at once.
		saveErr = repo.Save(ctx, c2)
		return saveErr
	})
	require.ErrorIs(t, err, repository.ErrDuplicateKey)
	var de *repository.DuplicateKeyError
	require.ErrorAs(t, saveErr, &de)
	require.Equal(t, repository.Key{Name: "name", Value: "c1"}, de.Key)
	require.Equal(t, "c2", de.ID)
	require.True(t, c1.HasChanges(), "rolled back, nothing marked")
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM aggregates`))
	require.Equal(t, 0, b.count(t, `SELECT count(*) FROM aggregate_keys`))
	require.Empty(t, b.outboxEvents(t))
}

// An event store's version conflict in a unit of work is a conflict
// (retrying the command can cure it), and the unit rolls back.
func TestEventStoreConflictInAUnit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	store := newEventStore(t, b)
	require.NoError(t, store.Save(ctx, mustCounter(t, "c1")))
	stale, err := store.Load(ctx, "c1")
	require.NoError(t, err)
	require.NoError(t, store.Update(ctx, "c1", func(c *repositorytest.Counter) error { return c.Add(1) }))
	require.NoError(t, stale.Add(10))
	require.NoError(t, stale.Add(20))

	fresh := mustCounter(t, "c2")
	err = b.uow.Do(ctx, func(ctx context.Context) error {
		require.NoError(t, store.Save(ctx, fresh))
		return store.Save(ctx, stale)
	})
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	var ce *aggregate.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, int64(1), ce.Expected)
	require.True(t, fresh.HasChanges())
	_, err = store.Load(ctx, "c2")
	require.ErrorIs(t, err, aggregate.ErrNotFound)
	got, err := store.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, int64(2), got.Version(), "no event of the stale save")
	require.Equal(t, 1, got.Value())
	require.Len(t, b.outboxEvents(t), 2)
}

// Aggregates racing for one key, each saved on its own: one wins, every
// other save fails with the key named and writes nothing.
func TestSaveKeyRace(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	repo := newRepo(t, b, nil)
	const racers = 8
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			c, err := repositorytest.NewCounter("c"+strconv.Itoa(i), "shared")
			if err == nil {
				err = repo.Save(ctx, c)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		var de *repository.DuplicateKeyError
		require.ErrorAs(t, err, &de)
		require.Equal(t, repository.Key{Name: "name", Value: "shared"}, de.Key)
	}
	require.Equal(t, 1, won)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM aggregates`))
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM aggregate_keys`))
	require.Len(t, b.outboxEvents(t), 1)
}

// TestSaveWritesEveryEventAtEachSize saves counters with event counts on
// both sides of the size up to which the save writes its events as a
// VALUES list (32) and beyond which it uses unnest arrays: inserts and
// updates, with and without keys, on their own and in a unit of work.
// Every event lands in the outbox once, in version order, with its
// payload; a stale save writes nothing.
func TestSaveWritesEveryEventAtEachSize(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	plainMapping := repositorytest.Mapping()
	plainMapping.Keys = nil
	plain, err := postgres.NewRepository(b.pool, b.outbox, plainMapping, nil)
	require.NoError(t, err)
	keyed := newRepo(t, b, nil)

	versions := func(id string) []int64 {
		return column[int64](t, b.pool, `SELECT aggregate_version FROM dddkit_outbox WHERE aggregate_id = $1 ORDER BY seq`, id)
	}
	upTo := func(n int64) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(i) + 1
		}
		return out
	}
	for _, repo := range []struct {
		name string
		repo *postgres.Repository[*repositorytest.Counter]
	}{{"plain", plain}, {"keyed", keyed}} {
		for _, n := range []int{1, 8, 31, 32, 33, 50} {
			for _, inUnit := range []bool{false, true} {
				id := fmt.Sprintf("size-%s-%d-%t", repo.name, n, inUnit)
				save := func(c *repositorytest.Counter) error {
					if inUnit {
						return b.uow.Do(ctx, func(ctx context.Context) error { return repo.repo.Save(ctx, c) })
					}
					return repo.repo.Save(ctx, c)
				}
				// Insert: the creation and n-1 additions.
				c := mustCounter(t, id)
				for k := 1; k < n; k++ {
					require.NoError(t, c.Add(k))
				}
				require.NoError(t, save(c), id)
				require.Equal(t, upTo(int64(n)), versions(id), "%s: insert of %d events", id, n)

				// Update with n more.
				stale, err := repo.repo.Load(ctx, id)
				require.NoError(t, err)
				for k := range n {
					require.NoError(t, c.Add(k+1))
				}
				require.NoError(t, save(c), id)
				require.Equal(t, upTo(int64(2*n)), versions(id), "%s: update with %d events", id, n)

				// A stale copy conflicts and writes nothing.
				for range n {
					require.NoError(t, stale.Add(1))
				}
				var conflict *aggregate.ConflictError
				require.ErrorAs(t, save(stale), &conflict, id)
				require.Equal(t, upTo(int64(2*n)), versions(id), "%s: after the conflict", id)

				got, err := repo.repo.Load(ctx, id)
				require.NoError(t, err)
				require.Equal(t, int64(2*n), got.Version(), id)
				require.Equal(t, c.Value(), got.Value(), id)
			}
		}
	}
}
