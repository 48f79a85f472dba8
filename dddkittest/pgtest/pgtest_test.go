package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest/pgtest"
)

// TestPostgresRoundTrip proves the tests reach a real PostgreSQL server, in
// a schema of their own.
func TestPostgresRoundTrip(t *testing.T) {
	t.Parallel()
	pool, schema := pgtest.Schema(t)
	ctx := context.Background()

	_, err := pool.Exec(ctx, `CREATE TABLE notes (id bigint PRIMARY KEY, body text NOT NULL)`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO notes VALUES (1, 'hello')`)
	require.NoError(t, err)

	var body, tableSchema, version string
	require.NoError(t, pool.QueryRow(ctx, `SELECT body FROM notes WHERE id = 1`).Scan(&body))
	require.NoError(t, pool.QueryRow(ctx,
		`SELECT table_schema FROM information_schema.tables WHERE table_name = 'notes' AND table_schema = current_schema()`).Scan(&tableSchema))
	require.NoError(t, pool.QueryRow(ctx, `SHOW server_version`).Scan(&version))
	require.Equal(t, "hello", body)
	require.Equal(t, schema, tableSchema)
	t.Logf("PostgreSQL %s, schema %s", version, schema)
}

// The schema a test gets is gone once the test has ended.
func TestSchemaIsDroppedAfterTheTest(t *testing.T) {
	t.Parallel()
	base := pgtest.DatabaseURL(t)
	var schema string
	t.Run("inner", func(t *testing.T) {
		_, schema = pgtest.Schema(t)
		require.True(t, schemaExists(t, base, schema), "the schema exists during the test")
	})
	require.NotEmpty(t, schema)
	require.False(t, schemaExists(t, base, schema), "the schema is dropped when the test ends")
}

func schemaExists(t *testing.T, dbURL, schema string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1`, schema).Scan(&n))
	return n == 1
}
