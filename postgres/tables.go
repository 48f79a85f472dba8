package postgres

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Default table names. A database migrated by dddkit before the
// postgres package existed uses exactly these, so it migrates forward
// in place.
const (
	DefaultOutboxTable        = "dddkit_outbox"
	DefaultInboxTable         = "dddkit_inbox"
	DefaultAggregatesTable    = "aggregates"
	DefaultAggregateKeysTable = "aggregate_keys"
	DefaultEventsTable        = "aggregate_events"
	DefaultSnapshotsTable     = "aggregate_snapshots"
	DefaultMigrationsTable    = "dddkit_migrations"
	DefaultProcessesTable     = "dddkit_processes"
	DefaultProjectionsTable   = "dddkit_projections"
	DefaultDeadLettersTable   = "dddkit_dead_letters"
	DefaultParkedTable        = "dddkit_parked"
)

// Tables names the tables dddkit keeps. The zero value means the default
// names in the connection's current schema (the first schema of its
// search_path that exists). Every adapter and [Migrate] take the same
// Tables; give them the same value.
type Tables struct {
	// Schema holds every table; "" means the connection's current schema.
	// Migrate creates it when it does not exist.
	Schema string
	// Outbox holds events waiting for the relay (default "dddkit_outbox").
	Outbox string
	// Inbox records which handler applied which event (default
	// "dddkit_inbox").
	Inbox string
	// Aggregates holds the state of state-stored aggregates (default
	// "aggregates").
	Aggregates string
	// AggregateKeys holds the unique keys of state-stored aggregates, such
	// as a user's email address (default "aggregate_keys").
	AggregateKeys string
	// Events is the event store of event-sourced aggregates (default
	// "aggregate_events").
	Events string
	// Snapshots holds snapshots of event-sourced aggregates (default
	// "aggregate_snapshots").
	Snapshots string
	// Migrations records the schema version (default "dddkit_migrations").
	Migrations string
	// Processes holds the state of process-manager instances (default
	// "dddkit_processes").
	Processes string
	// Projections holds the checkpoint and status of each projection
	// (default "dddkit_projections").
	Projections string
	// DeadLetters holds the dead letters of consumers: per handler and
	// key, the event it gave up on (default "dddkit_dead_letters").
	DeadLetters string
	// Parked holds the events held behind each dead letter, in order
	// (default "dddkit_parked").
	Parked string
}

// maxTableLen leaves room for the suffixes of index and constraint names
// within PostgreSQL's 63-byte identifiers.
const maxTableLen = 48

// Validate reports every problem with the names at once.
func (t *Tables) Validate() error {
	if t == nil {
		return nil
	}
	var errs []error
	check := func(field, v string, limit int) {
		if len(v) > limit {
			errs = append(errs, fmt.Errorf("postgres: Tables.%s %q is longer than %d bytes", field, v, limit))
		}
		if strings.ContainsRune(v, 0) {
			errs = append(errs, fmt.Errorf("postgres: Tables.%s contains a NUL byte", field))
		}
	}
	check("Schema", t.Schema, 63)
	c := t.withDefaults()
	seen := map[string]string{}
	for _, f := range []struct{ field, v string }{
		{"Outbox", c.Outbox}, {"Inbox", c.Inbox}, {"Aggregates", c.Aggregates},
		{"AggregateKeys", c.AggregateKeys}, {"Events", c.Events}, {"Snapshots", c.Snapshots}, {"Migrations", c.Migrations},
		{"Processes", c.Processes}, {"Projections", c.Projections},
		{"DeadLetters", c.DeadLetters}, {"Parked", c.Parked},
	} {
		check(f.field, f.v, maxTableLen)
		if other, dup := seen[f.v]; dup {
			errs = append(errs, fmt.Errorf("postgres: Tables.%s and Tables.%s are both %q", other, f.field, f.v))
		}
		seen[f.v] = f.field
	}
	return errors.Join(errs...)
}

func (t *Tables) withDefaults() Tables {
	var c Tables
	if t != nil {
		c = *t
	}
	c.Outbox = cmp.Or(c.Outbox, DefaultOutboxTable)
	c.Inbox = cmp.Or(c.Inbox, DefaultInboxTable)
	c.Aggregates = cmp.Or(c.Aggregates, DefaultAggregatesTable)
	c.AggregateKeys = cmp.Or(c.AggregateKeys, DefaultAggregateKeysTable)
	c.Events = cmp.Or(c.Events, DefaultEventsTable)
	c.Snapshots = cmp.Or(c.Snapshots, DefaultSnapshotsTable)
	c.Migrations = cmp.Or(c.Migrations, DefaultMigrationsTable)
	c.Processes = cmp.Or(c.Processes, DefaultProcessesTable)
	c.Projections = cmp.Or(c.Projections, DefaultProjectionsTable)
	c.DeadLetters = cmp.Or(c.DeadLetters, DefaultDeadLettersTable)
	c.Parked = cmp.Or(c.Parked, DefaultParkedTable)
	return c
}

// names are the quoted identifiers of one Tables value in one schema.
type names struct {
	t      Tables // with defaults; t.Schema may be "" (search_path)
	schema string // quoted schema, "" when unset
}

func newNames(t *Tables) (names, error) {
	if err := t.Validate(); err != nil {
		return names{}, err
	}
	n := names{t: t.withDefaults()}
	if n.t.Schema != "" {
		n.schema = pgx.Identifier{n.t.Schema}.Sanitize()
	}
	return n, nil
}

// q quotes a table of these names, qualified by the schema when one is set.
func (n names) q(table string) string {
	if n.t.Schema == "" {
		return pgx.Identifier{table}.Sanitize()
	}
	return pgx.Identifier{n.t.Schema, table}.Sanitize()
}

// ident quotes a bare (unqualified) name, such as an index name.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// channelName is the LISTEN/NOTIFY channel of the outbox table
// schema.table; names longer than PostgreSQL's 63 bytes are shortened
// with a hash (the same rule dddkit used before, so old triggers match).
func channelName(schema, table string) string {
	ch := schema + "." + table
	if len(ch) <= 63 {
		return ch
	}
	return fmt.Sprintf("%s_%016x", ch[:40], hash64(ch))
}

// lockKey is an advisory-lock key for purpose on schema.table.
func lockKey(purpose, schema, table string) int64 {
	return int64(hash64("dddkit/" + purpose + "/" + schema + "." + table)) // a hash: wrapping into the sign bit is intended
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
