package postgres_test

import (
	"context"
	_ "embed"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/postgres"
)

//go:embed testdata/legacy_schema.sql
var legacySchema string

func TestMigrateCreatesEverythingAndIsIdempotent(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Schema(t)
	ctx := context.Background()

	current, target, err := postgres.Version(ctx, pool, nil)
	require.NoError(t, err)
	require.Equal(t, 0, current)
	require.Equal(t, postgres.LatestVersion(), target)

	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	require.NoError(t, postgres.Migrate(ctx, pool, nil))

	current, target, err = postgres.Version(ctx, pool, nil)
	require.NoError(t, err)
	require.Equal(t, target, current)

	for _, table := range []string{"dddkit_outbox", "dddkit_inbox", "aggregates", "aggregate_keys", "aggregate_events"} {
		var reg *string
		require.NoError(t, pool.QueryRow(ctx, `SELECT to_regclass($1)::text`, table).Scan(&reg))
		require.NotNil(t, reg, "table %s", table)
	}
	var steps int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM dddkit_migrations`).Scan(&steps))
	require.Equal(t, postgres.LatestVersion(), steps)
}

func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	pool, _ := pgtest.Schema(t)
	ctx := context.Background()
	tables := &postgres.Tables{Schema: dddkittest.UniqueName(t)} // created by Migrate
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { errs[i] = postgres.Migrate(ctx, pool, tables) })
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	current, target, err := postgres.Version(ctx, pool, tables)
	require.NoError(t, err)
	require.Equal(t, target, current)
	_, err = pool.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{tables.Schema}.Sanitize()+` CASCADE`)
	require.NoError(t, err)
}

// A database set up by the dddkit before the postgres package (three
// migrators, default names) migrates forward in place: the rows stay and
// the outbox still wakes its listeners on the same channel.
func TestMigrateAdoptsTheLegacySchema(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	ctx := context.Background()
	channel := schema + ".dddkit_outbox"
	_, err := pool.Exec(ctx, strings.ReplaceAll(legacySchema, "{{CHANNEL}}", channel))
	require.NoError(t, err)

	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	current, target, err := postgres.Version(ctx, pool, nil)
	require.NoError(t, err)
	require.Equal(t, target, current)

	count := func(table string) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()).Scan(&n))
		return n
	}
	require.Equal(t, 1, count("dddkit_outbox"))
	require.Equal(t, 1, count("aggregates"))
	require.Equal(t, 1, count("aggregate_keys"))
	require.Equal(t, 1, count("aggregate_events"))
	require.Equal(t, 1, count("dddkit_inbox"))
	// The outbox payload became the JSON's bytes (jsonb's text form for
	// rows written before), which the relay publishes as they are.
	var payload []byte
	require.NoError(t, pool.QueryRow(ctx, `SELECT payload FROM dddkit_outbox WHERE event_id = 'ev-1'`).Scan(&payload))
	require.Equal(t, `{"email": "ada@example.com"}`, string(payload))
	var typ string
	require.NoError(t, pool.QueryRow(ctx, `SELECT pg_typeof(payload)::text FROM dddkit_outbox LIMIT 1`).Scan(&typ))
	require.Equal(t, "bytea", typ)
	// The step is idempotent: run by hand again, it changes nothing.
	steps, err := postgres.Migrations(&postgres.Tables{Schema: schema})
	require.NoError(t, err)
	ran := false
	for _, m := range steps {
		if strings.Contains(m.Name, "bytea") {
			_, err = pool.Exec(ctx, m.SQL)
			require.NoError(t, err)
			ran = true
		}
	}
	require.True(t, ran, "the bytea step exists")
	require.NoError(t, pool.QueryRow(ctx, `SELECT payload FROM dddkit_outbox WHERE event_id = 'ev-1'`).Scan(&payload))
	require.Equal(t, `{"email": "ada@example.com"}`, string(payload))

	// The trigger still notifies the channel the relay listens on.
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize())
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO dddkit_outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_name, payload, occurred_at)
		VALUES ('ev-3', 'user', 'u-1', 2, 'user.verified', '{}', now())`)
	require.NoError(t, err)
	n, err := conn.Conn().WaitForNotification(ctx)
	require.NoError(t, err)
	require.Equal(t, channel, n.Channel)
}

func TestMigrationsSQLMatchesMigrate(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	ctx := context.Background()
	steps, err := postgres.Migrations(&postgres.Tables{Schema: schema})
	require.NoError(t, err)
	require.Len(t, steps, postgres.LatestVersion())
	for i, m := range steps {
		require.Equal(t, i+1, m.Version)
		require.NotEmpty(t, m.Name)
		// What a team's own migration tool would do: run each step once.
		_, err := pool.Exec(ctx, m.SQL)
		require.NoError(t, err, "step %d", m.Version)
	}
	// Running Migrate afterwards adopts the tables (every step is idempotent).
	require.NoError(t, postgres.Migrate(ctx, pool, &postgres.Tables{Schema: schema}))
}

func TestTablesValidate(t *testing.T) {
	t.Parallel()
	err := (&postgres.Tables{Outbox: strings.Repeat("x", 49), Inbox: "same", Events: "same", Schema: "a\x00"}).Validate()
	require.ErrorContains(t, err, "Tables.Outbox")
	require.ErrorContains(t, err, `Tables.Inbox and Tables.Events are both "same"`)
	require.ErrorContains(t, err, "Tables.Schema contains a NUL byte")
	require.NoError(t, (*postgres.Tables)(nil).Validate())
	_, err = postgres.Migrations(&postgres.Tables{Inbox: "same", Events: "same"})
	require.Error(t, err)
	require.Error(t, postgres.Migrate(context.Background(), nil, nil))
}
