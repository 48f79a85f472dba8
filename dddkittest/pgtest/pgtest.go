// Package pgtest gives a test a PostgreSQL schema of its own on the
// server named by TEST_DATABASE_URL, dropped when the test ends, so that
// tests can run in parallel against one server. Without TEST_DATABASE_URL
// the helpers skip the test with a message naming the variable.
//
// It is separate from dddkittest because it depends on pgx.
package pgtest

import (
	"context"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/dddkittest"
)

// EnvDatabaseURL is the environment variable the helpers read: a
// postgres:// URL of a server where the tests may create schemas.
const EnvDatabaseURL = "TEST_DATABASE_URL"

// DatabaseURL returns TEST_DATABASE_URL or skips the test.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvDatabaseURL)
	if u == "" {
		t.Skipf("skipping: needs PostgreSQL; set %s (make test starts a server and sets it)", EnvDatabaseURL)
	}
	return u
}

// SchemaURL creates a schema of the test's own, dropped when the test
// ends, and returns a connection URL whose search_path is that schema
// (for code under test that takes a URL, such as a service's config).
func SchemaURL(t testing.TB) (dbURL, schema string) {
	t.Helper()
	base := DatabaseURL(t)
	schema = dddkittest.UniqueName(t)
	exec := func(sql string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create schema: %v", err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + pgx.Identifier{schema}.Sanitize() + " CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		t.Fatalf("pgtest: %s must be a postgres:// URL", EnvDatabaseURL)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}

// Schema creates a schema of the test's own and returns a pool whose
// connections use it as search_path; the schema is dropped when the test
// ends. Tables created without a schema prefix land in it.
func Schema(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dbURL, schema := SchemaURL(t)
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatalf("pgtest: parse %s: %v", EnvDatabaseURL, err)
	}
	cfg.MaxConns = 8
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close) // runs before the schema is dropped
	return pool, schema
}

// Pool is [Schema] for tests that only need the pool.
func Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, _ := Schema(t)
	return pool
}
