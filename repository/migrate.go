package repository

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Tables names the tables of the PostgreSQL adapter. The zero value means
// the defaults. All repositories of a service usually share one pair of
// tables; the type column keeps aggregate types apart.
type Tables struct {
	// Schema holds both tables. "" means the first schema of the
	// connection's search_path (normally "public").
	Schema string
	// State is the table of aggregate rows. "" means "aggregates".
	State string
	// Keys is the table of unique secondary keys (see [Mapping.Keys]).
	// "" means "aggregate_keys".
	Keys string
	// Events is the event table of the event-sourced store
	// ([EventStore]). "" means "aggregate_events".
	Events string
}

type tableNames struct {
	schema              string // quoted, "" when unset
	state, keys, events string // quoted and qualified
	keysIndex           string // quoted, unqualified
	eventIDKey          string // quoted, unqualified
}

func (t Tables) names() (tableNames, error) {
	state, keys, events := cmp.Or(t.State, "aggregates"), cmp.Or(t.Keys, "aggregate_keys"), cmp.Or(t.Events, "aggregate_events")
	if state == keys || state == events || keys == events {
		return tableNames{}, fmt.Errorf("repository: Tables.State (%q), Keys (%q) and Events (%q) must differ", state, keys, events)
	}
	qualify := func(name string) string {
		if t.Schema == "" {
			return pgx.Identifier{name}.Sanitize()
		}
		return pgx.Identifier{t.Schema, name}.Sanitize()
	}
	n := tableNames{state: qualify(state), keys: qualify(keys), events: qualify(events)}
	if t.Schema != "" {
		n.schema = pgx.Identifier{t.Schema}.Sanitize()
	}
	n.keysIndex = pgx.Identifier{keys + "_owner_idx"}.Sanitize()
	n.eventIDKey = pgx.Identifier{events + "_event_id_key"}.Sanitize()
	return n, nil
}

// migrateLockID is the advisory lock that serialises concurrent Migrate
// calls (CREATE TABLE IF NOT EXISTS alone races on the catalog).
const migrateLockID int64 = 0x646464_6b6974_01 // "dddkit" + 1

// Migrate creates the tables of the PostgreSQL adapters ([Postgres] and
// [EventStore]) if they do not exist.
// It is idempotent and safe to run from several processes at once: it
// takes a transaction-scoped advisory lock and runs in one transaction. A
// nil tables means the default names.
//
// The state table has one row per aggregate:
//
//	type       text        aggregate type    ┐ primary key
//	id         text        aggregate ID      ┘
//	version    bigint      version of the stored state (> 0)
//	state      jsonb       what Mapping.Encode returned
//	created_at timestamptz
//	updated_at timestamptz
//
// The keys table holds (type, name, value) → id, unique per type. The
// events table of the event-sourced store has one row per event:
//
//	type        text        aggregate type    ┐
//	id          text        aggregate ID      │ primary key
//	version     bigint      event version     ┘
//	event_id    text        unique
//	name        text        event name
//	payload     jsonb       the event, encoding/json
//	metadata    jsonb       correlation/causation IDs, traceparent, values
//	occurred_at timestamptz
//	recorded_at timestamptz
func Migrate(ctx context.Context, db Beginner, tables *Tables) error {
	if db == nil {
		return errors.New("repository: Migrate: db is nil")
	}
	if tables == nil {
		tables = &Tables{}
	}
	n, err := tables.names()
	if err != nil {
		return err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("repository: migrate: begin: %w", err)
	}
	defer rollback(ctx, tx)
	stmts := []string{`SELECT pg_advisory_xact_lock(` + fmt.Sprint(migrateLockID) + `)`}
	if n.schema != "" {
		stmts = append(stmts, `CREATE SCHEMA IF NOT EXISTS `+n.schema)
	}
	stmts = append(stmts,
		`CREATE TABLE IF NOT EXISTS `+n.state+` (
	type       text        NOT NULL,
	id         text        NOT NULL,
	version    bigint      NOT NULL CHECK (version > 0),
	state      jsonb       NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (type, id)
) WITH (fillfactor = 90)`,
		`CREATE TABLE IF NOT EXISTS `+n.keys+` (
	type  text NOT NULL,
	name  text NOT NULL,
	value text NOT NULL,
	id    text NOT NULL,
	PRIMARY KEY (type, name, value)
)`,
		`CREATE INDEX IF NOT EXISTS `+n.keysIndex+` ON `+n.keys+` (type, id)`,
		`CREATE TABLE IF NOT EXISTS `+n.events+` (
	type        text        NOT NULL,
	id          text        NOT NULL,
	version     bigint      NOT NULL CHECK (version > 0),
	event_id    text        NOT NULL,
	name        text        NOT NULL,
	payload     jsonb       NOT NULL,
	metadata    jsonb,
	occurred_at timestamptz NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (type, id, version),
	CONSTRAINT `+n.eventIDKey+` UNIQUE (event_id)
)`,
	)
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("repository: migrate: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("repository: migrate: commit: %w", err)
	}
	return nil
}
