package eventbus

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what the [Inbox] needs from PostgreSQL: *pgxpool.Pool and
// *pgx.Conn have it.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// inboxMigrationLock is the key of the advisory lock that serialises
// inbox migrations, so that replicas starting together do not race on
// CREATE TABLE IF NOT EXISTS (which is not safe against concurrent runs).
const inboxMigrationLock = "dddkit.eventbus.inbox.migrate"

type inboxSQL struct {
	table       string // quoted, possibly schema-qualified
	index       string // quoted, unqualified
	insert      string
	insertBatch string
	exists      string
	cleanup     string
}

func newInboxSQL(table string) inboxSQL {
	parts := strings.Split(table, ".")
	q := pgx.Identifier(parts).Sanitize()
	return inboxSQL{
		table: q,
		index: pgx.Identifier{parts[len(parts)-1] + "_processed_at_idx"}.Sanitize(),
		insert: `INSERT INTO ` + q + ` (handler, event_id, event_name) VALUES ($1, $2, $3)
ON CONFLICT (handler, event_id) DO NOTHING`,
		insertBatch: `INSERT INTO ` + q + ` (handler, event_id, event_name)
SELECT $1, e.id, e.name FROM unnest($2::text[], $3::text[]) AS e (id, name)
ON CONFLICT (handler, event_id) DO NOTHING
RETURNING event_id`,
		exists: `SELECT EXISTS (SELECT 1 FROM ` + q + ` WHERE handler = $1 AND event_id = $2)`,
		cleanup: `DELETE FROM ` + q + ` WHERE ctid = ANY (ARRAY (
  SELECT ctid FROM ` + q + ` WHERE processed_at < now() - make_interval(secs => $1) LIMIT $2))`,
	}
}

// Migrate creates the inbox table and its index if they do not exist. It
// is idempotent and safe to run from several processes at once (they take
// turns on a transaction-scoped advisory lock). The table:
//
//	handler      text        -- handler name (consumer group)
//	event_id     text        -- the event's ID
//	event_name   text
//	processed_at timestamptz -- when the effects committed; cleanup key
//	PRIMARY KEY (handler, event_id)
func (i *Inbox) Migrate(ctx context.Context) error {
	tx, err := i.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("eventbus: inbox migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	stmts := []string{
		`SELECT pg_advisory_xact_lock(hashtext('` + inboxMigrationLock + `'))`,
		`CREATE TABLE IF NOT EXISTS ` + i.sql.table + ` (
  handler      text        NOT NULL,
  event_id     text        NOT NULL,
  event_name   text        NOT NULL DEFAULT '',
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (handler, event_id)
)`,
		// BRIN, not B-tree: processed_at grows with the insertion order, so
		// a BRIN index finds the old rows for Cleanup just as well and
		// costs next to nothing on the hot path, where every event inserts
		// a row.
		`CREATE INDEX IF NOT EXISTS ` + i.sql.index + ` ON ` + i.sql.table + ` USING brin (processed_at)`,
		`COMMENT ON TABLE ` + i.sql.table + ` IS 'dddkit eventbus inbox: events whose effects each handler has committed'`,
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("eventbus: inbox migrate %s: %w", i.sql.table, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("eventbus: inbox migrate %s: %w", i.sql.table, err)
	}
	return nil
}

// Processed reports whether handler has committed the effects of event
// eventID (and the row has not been cleaned up yet).
func (i *Inbox) Processed(ctx context.Context, handler, eventID string) (bool, error) {
	var ok bool
	if err := i.db.QueryRow(ctx, i.sql.exists, handler, eventID).Scan(&ok); err != nil {
		return false, fmt.Errorf("eventbus: inbox: %w", err)
	}
	return ok, nil
}

// Cleanup deletes the rows older than [InboxConfig.Retention], in batches
// of [InboxConfig.CleanupBatch], and returns how many it deleted.
func (i *Inbox) Cleanup(ctx context.Context) (int64, error) {
	var total int64
	secs := i.cfg.Retention.Seconds()
	for {
		tag, err := i.db.Exec(ctx, i.sql.cleanup, secs, i.cfg.CleanupBatch)
		if err != nil {
			return total, fmt.Errorf("eventbus: inbox cleanup: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(i.cfg.CleanupBatch) {
			return total, nil
		}
	}
}

// recordBatch inserts the inbox rows (handler, ids[k], names[k]) in tx
// with one statement and returns the IDs whose rows are new. ids must not
// repeat.
func (i *Inbox) recordBatch(ctx context.Context, tx pgx.Tx, handler string, ids, names []string) (map[string]bool, error) {
	rows, err := tx.Query(ctx, i.sql.insertBatch, handler, ids, names)
	if err != nil {
		return nil, fmt.Errorf("eventbus: inbox: record %d events of %s: %w", len(ids), handler, err)
	}
	fresh := make(map[string]bool, len(ids))
	var id string
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
		fresh[id] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("eventbus: inbox: record %d events of %s: %w", len(ids), handler, err)
	}
	return fresh, nil
}
