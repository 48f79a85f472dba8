package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
)

// pgBundle is a schema of the test's own with a migrated inbox and an
// effects table that handlers write to.
type pgBundle struct {
	pool  *pgxpool.Pool
	inbox *eventbus.Inbox
}

func setupPG(t testing.TB, cfg *eventbus.InboxConfig) *pgBundle {
	t.Helper()
	pool := testinfra.Pool(t)
	ctx := context.Background()
	if cfg == nil {
		cfg = &eventbus.InboxConfig{}
	}
	cfg.Logger = testLogger()
	inbox, err := eventbus.NewInbox(pool, cfg)
	require.NoError(t, err)
	require.NoError(t, inbox.Migrate(ctx))
	_, err = pool.Exec(ctx, `CREATE TABLE effects (event_id text NOT NULL, aggregate_id text NOT NULL, amount int NOT NULL)`)
	require.NoError(t, err)
	return &pgBundle{pool: pool, inbox: inbox}
}

func (b *pgBundle) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

func TestInboxProcessSkipsDuplicates(t *testing.T) {
	t.Parallel()
	pg := setupPG(t, nil)
	ctx := context.Background()
	md := eventbus.Metadata{EventID: "ev-1", EventName: "x"}
	var runs int
	fn := func(ctx context.Context, tx pgx.Tx) error {
		runs++
		_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ('ev-1', 'a', 1)`)
		return err
	}
	failing := func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ('ev-1', 'a', 1)`)
		require.NoError(t, err)
		return errors.New("boom")
	}

	applied, err := pg.inbox.Process(ctx, "h", md, failing)
	require.EqualError(t, err, "boom")
	require.False(t, applied)
	require.Equal(t, 0, pg.count(t, `SELECT count(*) FROM effects`), "a failed attempt leaves nothing")

	for range 3 {
		_, err := pg.inbox.Process(ctx, "h", md, fn)
		require.NoError(t, err)
	}
	require.Equal(t, 1, runs)
	require.Equal(t, 1, pg.count(t, `SELECT count(*) FROM effects`))

	// Another handler is another consumer: it applies the event too.
	applied, err = pg.inbox.Process(ctx, "other", md, fn)
	require.NoError(t, err)
	require.True(t, applied)

	_, err = pg.inbox.Process(ctx, "h", eventbus.Metadata{}, fn)
	require.ErrorIs(t, err, eventbus.ErrPermanent)

	// A database that cannot be reached is an outage, not a bad event.
	down := testinfra.Pool(t)
	down.Close()
	unreachable, err := eventbus.NewInbox(down, nil)
	require.NoError(t, err)
	_, err = unreachable.Process(ctx, "h", md, fn)
	require.ErrorIs(t, err, eventbus.ErrUnavailable)
}

// Concurrent deliveries of one event (a rebalance hands a partition over
// mid-flight) apply it once: the second insert waits for the first
// transaction and then finds the row.
func TestInboxConcurrentDeliveriesApplyOnce(t *testing.T) {
	t.Parallel()
	pg := setupPG(t, nil)
	ctx := context.Background()
	md := eventbus.Metadata{EventID: "ev-c", EventName: "x"}
	var runs atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := pg.inbox.Process(ctx, "h", md, func(ctx context.Context, tx pgx.Tx) error {
				runs.Add(1)
				time.Sleep(20 * time.Millisecond)
				_, err := tx.Exec(ctx, `INSERT INTO effects VALUES ('ev-c', 'a', 1)`)
				return err
			})
			require.NoError(t, err)
		})
	}
	wg.Wait()
	require.Equal(t, int64(1), runs.Load())
	require.Equal(t, 1, pg.count(t, `SELECT count(*) FROM effects`))
}

func TestInboxMigrateIsIdempotentAndConcurrencySafe(t *testing.T) {
	t.Parallel()
	pool, schema := testinfra.Schema(t)
	ctx := context.Background()
	inbox, err := eventbus.NewInbox(pool, &eventbus.InboxConfig{Table: schema + ".my_inbox"})
	require.NoError(t, err)
	require.Equal(t, `"`+schema+`"."my_inbox"`, inbox.Table())
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Go(func() { errs <- inbox.Migrate(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, inbox.Migrate(ctx))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND tablename = 'my_inbox'`, schema).Scan(&n))
	require.Equal(t, 2, n, "primary key and processed_at index")
}

func TestInboxCleanupDeletesExpiredRows(t *testing.T) {
	t.Parallel()
	pg := setupPG(t, &eventbus.InboxConfig{Retention: time.Hour, CleanupBatch: 3})
	ctx := context.Background()
	noop := func(context.Context, pgx.Tx) error { return nil }
	for i := range 10 {
		_, err := pg.inbox.Process(ctx, "h", eventbus.Metadata{EventID: fmt.Sprint("ev-", i)}, noop)
		require.NoError(t, err)
	}
	_, err := pg.pool.Exec(ctx, `UPDATE `+pg.inbox.Table()+` SET processed_at = now() - interval '2 hours' WHERE event_id <> 'ev-9'`)
	require.NoError(t, err)
	n, err := pg.inbox.Cleanup(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(9), n, "three batches of three")
	require.Equal(t, 1, pg.count(t, `SELECT count(*) FROM `+pg.inbox.Table()))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.NoError(t, pg.inbox.RunCleanup(cctx))
}
