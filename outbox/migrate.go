package outbox

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migration is one versioned step of the outbox schema.
type Migration struct {
	// Version numbers start at 1 and have no gaps.
	Version int
	// Name says in a few words what the step does.
	Name string
	// up returns the SQL of the step for one outbox table.
	up func(n names) string
}

// migrations is the full history of the outbox schema, oldest first. A
// released step is never edited; changes are new steps.
var migrations = []Migration{
	{Version: 1, Name: "create outbox table, indexes and NOTIFY trigger", up: migration1},
}

// Migrations returns the known schema versions, oldest first.
func Migrations() []Migration { return append([]Migration(nil), migrations...) }

// LatestVersion is the schema version this package's code needs.
func LatestVersion() int { return migrations[len(migrations)-1].Version }

func migration1(n names) string {
	t := n.qtable
	ix := func(suffix string) string { return pgx.Identifier{n.table + suffix}.Sanitize() }
	fn := n.qualified(n.table + "_notify")
	return `
CREATE TABLE ` + t + ` (
	seq               bigserial   PRIMARY KEY,
	event_id          text        NOT NULL,
	aggregate_type    text        NOT NULL,
	aggregate_id      text        NOT NULL,
	aggregate_version bigint      NOT NULL,
	event_name        text        NOT NULL,
	event_version     integer     NOT NULL DEFAULT 1,
	payload           jsonb       NOT NULL,
	headers           jsonb,
	occurred_at       timestamptz NOT NULL,
	created_at        timestamptz NOT NULL DEFAULT now(),
	status            text        NOT NULL DEFAULT 'pending',
	attempts          integer     NOT NULL DEFAULT 0,
	last_error        text,
	next_attempt_at   timestamptz,
	published_at      timestamptz,
	CONSTRAINT ` + ix("_event_id_key") + ` UNIQUE (event_id),
	CONSTRAINT ` + ix("_status_check") + ` CHECK (status IN ('pending', 'published', 'failed'))
);
COMMENT ON TABLE ` + t + ` IS 'dddkit transactional outbox: events written with the aggregate, published by the relay';

-- The relay reads pending rows in sequence order.
CREATE INDEX ` + ix("_pending_idx") + ` ON ` + t + ` (seq) WHERE status = 'pending';
-- Rows that block the later events of their aggregate: failed ones and
-- ones waiting for a retry. Usually empty, so the relay's check is cheap.
CREATE INDEX ` + ix("_blocked_idx") + ` ON ` + t + ` (aggregate_type, aggregate_id, seq)
	WHERE status = 'failed' OR next_attempt_at IS NOT NULL;
-- Retention deletes published rows by age.
CREATE INDEX ` + ix("_published_idx") + ` ON ` + t + ` (published_at) WHERE status = 'published';

-- One notification per inserting statement (PostgreSQL folds identical
-- notifications of one transaction into one) wakes the relay at commit.
CREATE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify(TG_ARGV[0], '');
	RETURN NULL;
END
$$;
CREATE TRIGGER ` + ix("_notify") + ` AFTER INSERT ON ` + t + `
	FOR EACH STATEMENT EXECUTE FUNCTION ` + fn + `(` + quoteLiteral(n.channel) + `);
`
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Migrate installs or upgrades the outbox schema described by cfg (nil =
// defaults) to [LatestVersion]. It is idempotent and safe to run from
// several processes at once: it takes a transaction-scoped advisory lock
// derived from the table's name, reads the applied versions from
// Table+"_migrations" and applies the missing steps in one transaction. A
// database that is already newer than this code is left alone.
func Migrate(ctx context.Context, db *pgxpool.Pool, cfg *Config) error {
	_, err := migrate(ctx, db, cfg)
	return err
}

// MigrateVersion is [Migrate] that also returns the schema version found
// before and after.
func MigrateVersion(ctx context.Context, db *pgxpool.Pool, cfg *Config) (before, after int, err error) {
	r, err := migrate(ctx, db, cfg)
	return r.before, r.after, err
}

type migrateResult struct{ before, after int }

func migrate(ctx context.Context, db *pgxpool.Pool, cfg *Config) (migrateResult, error) {
	var res migrateResult
	if db == nil {
		return res, errors.New("outbox: Migrate: nil pool")
	}
	c, err := cfg.withDefaults()
	if err != nil {
		return res, err
	}
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		schema := c.Schema
		if schema == "" {
			var cur *string
			if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
				return fmt.Errorf("resolve current schema: %w", err)
			}
			if cur == nil {
				return errors.New("no schema in search_path exists; set Config.Schema")
			}
			schema = *cur
		}
		n := newNames(schema, c.Table)
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("migrate", n)); err != nil {
			return fmt.Errorf("take migration lock: %w", err)
		}
		if c.Schema != "" {
			if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
		mt := n.qualified(c.Table + "_migrations")
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+mt+` (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return fmt.Errorf("create migrations table: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+mt).Scan(&res.before); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		res.after = res.before
		for _, m := range migrations {
			if m.Version <= res.before {
				continue
			}
			if _, err := tx.Exec(ctx, m.up(n)); err != nil {
				return fmt.Errorf("apply version %d (%s): %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+mt+` (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("record version %d: %w", m.Version, err)
			}
			res.after = m.Version
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("outbox: migrate %s: %w", c.Table, err)
	}
	return res, nil
}

// ErrNotMigrated is returned when the outbox table does not exist or its
// schema is older than this code needs; run [Migrate].
var ErrNotMigrated = errors.New("outbox: table not migrated (run outbox.Migrate)")

// resolve finds the schema of the outbox table and checks that it is
// migrated to the version this code needs.
func resolve(ctx context.Context, db *pgxpool.Pool, c Config) (names, error) {
	var schema *string
	var err error
	if c.Schema == "" {
		err = db.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.oid = to_regclass($1)`, pgx.Identifier{c.Table}.Sanitize()).Scan(&schema)
	} else {
		err = db.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.oid = to_regclass($1)`, pgx.Identifier{c.Schema, c.Table}.Sanitize()).Scan(&schema)
	}
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && schema == nil) {
		return names{}, fmt.Errorf("%w: %s", ErrNotMigrated, c.Table)
	}
	if err != nil {
		return names{}, fmt.Errorf("outbox: find table %s: %w", c.Table, err)
	}
	n := newNames(*schema, c.Table)
	var version int
	if err := db.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+n.qualified(c.Table+"_migrations")).Scan(&version); err != nil {
		return names{}, fmt.Errorf("outbox: read schema version of %s: %w", n.qtable, err)
	}
	if version < LatestVersion() {
		return names{}, fmt.Errorf("%w: %s is at version %d, need %d", ErrNotMigrated, n.qtable, version, LatestVersion())
	}
	return n, nil
}
