package outbox

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// DefaultTable is the outbox table's name when [Config.Table] is empty.
const DefaultTable = "dddkit_outbox"

// maxTableLen keeps every name derived from the table name (the
// migrations table, index, trigger and function names) within
// PostgreSQL's 63-byte identifier limit.
const maxTableLen = 48

// Config says where the outbox table lives. The zero value (and a nil
// *Config wherever one is accepted) means table [DefaultTable] in the first
// schema of the connection's search_path.
type Config struct {
	// Schema is the PostgreSQL schema of the outbox table. Empty means the
	// connection's current schema (the first existing entry of
	// search_path); [Migrate] and the [Relay] resolve it once, [Store]
	// writes the table name unqualified so the transaction's search_path
	// decides. [Migrate] creates a named schema if it does not exist.
	Schema string
	// Table is the outbox table's name; default [DefaultTable]. At most 48
	// bytes. The migration bookkeeping lives in Table+"_migrations" in the
	// same schema; indexes, the NOTIFY trigger and its function are named
	// after the table too.
	Table string
}

// Validate reports every problem with c, joined. A nil c is valid.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	if len(c.Table) > maxTableLen {
		errs = append(errs, fmt.Errorf("outbox: Config.Table %q is longer than %d bytes", c.Table, maxTableLen))
	}
	if strings.ContainsRune(c.Table, 0) {
		errs = append(errs, errors.New("outbox: Config.Table contains a NUL byte"))
	}
	if len(c.Schema) > 63 {
		errs = append(errs, fmt.Errorf("outbox: Config.Schema %q is longer than 63 bytes", c.Schema))
	}
	if strings.ContainsRune(c.Schema, 0) {
		errs = append(errs, errors.New("outbox: Config.Schema contains a NUL byte"))
	}
	return errors.Join(errs...)
}

// withDefaults returns a validated copy of c with defaults filled in.
func (c *Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	var out Config
	if c != nil {
		out = *c
	}
	if out.Table == "" {
		out.Table = DefaultTable
	}
	return out, nil
}

// names holds the SQL identifiers of one outbox, with the schema resolved.
type names struct {
	schema  string
	table   string
	qtable  string // "schema"."table", quoted
	channel string // LISTEN/NOTIFY channel
}

func newNames(schema, table string) names {
	return names{
		schema:  schema,
		table:   table,
		qtable:  pgx.Identifier{schema, table}.Sanitize(),
		channel: channelName(schema, table),
	}
}

// qualified returns the quoted name of another object in the outbox's
// schema.
func (n names) qualified(name string) string { return pgx.Identifier{n.schema, name}.Sanitize() }

// channelName is the NOTIFY channel of an outbox table: "schema.table", or
// a hashed form when that would exceed PostgreSQL's identifier length.
func channelName(schema, table string) string {
	ch := schema + "." + table
	if len(ch) <= 63 {
		return ch
	}
	return fmt.Sprintf("%s_%016x", ch[:40], hash64(ch))
}

// lockKey derives a 64-bit advisory lock key for one purpose on one table.
func lockKey(purpose string, n names) int64 {
	return int64(hash64("dddkit/outbox/" + purpose + "/" + n.schema + "." + n.table)) // a hash: wrapping into the sign bit is intended
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(s))
	return h.Sum64()
}
