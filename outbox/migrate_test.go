package outbox_test

import (
	"context"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/retry"
)

func TestMigrateIsIdempotentAndConcurrencySafe(t *testing.T) {
	t.Parallel()
	pool, schema := testinfra.Schema(t)
	ctx := context.Background()

	// Five processes' worth of migrators at once, on separate connections.
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Go(func() { errs[i] = outbox.Migrate(ctx, pool, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}

	before, after, err := outbox.MigrateVersion(ctx, pool, nil)
	require.NoError(t, err)
	require.Equal(t, outbox.LatestVersion(), before)
	require.Equal(t, outbox.LatestVersion(), after)

	var versions int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM dddkit_outbox_migrations`).Scan(&versions))
	require.Equal(t, len(outbox.Migrations()), versions)

	// With Schema empty the table lands in the search_path's schema. (Resolve
	// the name through the search_path: other tests' schemas running at the
	// same time have a dddkit_outbox table too.)
	var tableSchema string
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = 'dddkit_outbox'::regclass`).Scan(&tableSchema))
	require.Equal(t, schema, tableSchema)

	var indexes []string
	rows, err := pool.Query(ctx, `SELECT indexname FROM pg_indexes WHERE tablename = 'dddkit_outbox' AND schemaname = $1 ORDER BY 1`, schema)
	require.NoError(t, err)
	indexes, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"dddkit_outbox_blocked_idx", "dddkit_outbox_event_id_key", "dddkit_outbox_pending_idx", "dddkit_outbox_pkey", "dddkit_outbox_published_idx"}, indexes)
}

func TestMigrateCreatesNamedSchema(t *testing.T) {
	t.Parallel()
	pool, schema := testinfra.Schema(t)
	ctx := context.Background()
	other := schema + "_ob"
	t.Cleanup(func() {
		_, err := pool.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{other}.Sanitize()+` CASCADE`)
		require.NoError(t, err)
	})
	cfg := &outbox.Config{Schema: other, Table: "events_out"}
	require.NoError(t, outbox.Migrate(ctx, pool, cfg))
	require.NoError(t, outbox.Migrate(ctx, pool, cfg))

	// A store with an explicit schema writes there whatever the search_path.
	store, err := outbox.NewStore(cfg)
	require.NoError(t, err)
	require.NoError(t, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return store.Write(ctx, tx, envelope("c1", 1)) }))
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{other, "events_out"}.Sanitize()).Scan(&n))
	require.Equal(t, 1, n)

	admin, err := outbox.NewAdmin(pool, cfg)
	require.NoError(t, err)
	st, err := admin.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), st.Pending)
}

func TestNotMigrated(t *testing.T) {
	t.Parallel()
	pool := testinfra.Pool(t)
	admin, err := outbox.NewAdmin(pool, nil)
	require.NoError(t, err)
	_, err = admin.Stats(context.Background())
	require.ErrorIs(t, err, outbox.ErrNotMigrated)

	relay, err := outbox.NewRelay(pool, &recorder{}, nil)
	require.NoError(t, err)
	require.ErrorIs(t, relay.Run(context.Background()), outbox.ErrNotMigrated)
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	long := string(make([]byte, 49))
	err := (&outbox.Config{Table: long + "x", Schema: "a\x00"}).Validate()
	require.ErrorContains(t, err, "Config.Table")
	require.ErrorContains(t, err, "Config.Schema")
	_, err = outbox.NewStore(&outbox.Config{Table: long})
	require.Error(t, err)

	err = (&outbox.RelayConfig{BatchSize: -1, PollInterval: -1, Retry: retry.Policy{MaxAttempts: -2}, Outbox: &outbox.Config{Table: long}}).Validate()
	require.ErrorContains(t, err, "BatchSize")
	require.ErrorContains(t, err, "PollInterval")
	require.ErrorContains(t, err, "outbox: RelayConfig.Retry: retry: Policy.MaxAttempts is -2, must be >= 0")
	require.ErrorContains(t, err, "Config.Table")
	require.NoError(t, (*outbox.RelayConfig)(nil).Validate())

	_, err = outbox.NewRelay(nil, nil, &outbox.RelayConfig{BatchSize: 20000})
	require.ErrorContains(t, err, "nil pool")
	require.ErrorContains(t, err, "nil publisher")
	require.ErrorContains(t, err, "BatchSize")
	_, err = outbox.NewMemoryRelay(nil, nil, nil)
	require.ErrorContains(t, err, "nil Memory")
}
