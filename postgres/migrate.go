package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrNotMigrated is returned by adapters and by [Version] users when the
// database is older than this version of dddkit needs: run [Migrate].
var ErrNotMigrated = errors.New("postgres: dddkit tables not migrated (run postgres.Migrate)")

// Migration is one versioned step of the dddkit schema.
type Migration struct {
	// Version numbers the steps from 1, without gaps.
	Version int
	// Name says what the step does.
	Name string
	// SQL is the step's statements, for teams that run their own
	// migration tool (goose, atlas, Flyway, …): apply each step's SQL in
	// order, once. Every statement is idempotent, so a step also adopts
	// tables that an older dddkit created.
	SQL string
}

// steps are the migrations in order; each renders its SQL for a set of
// names. The schema name is needed literally for the outbox's NOTIFY
// channel.
var steps = []struct {
	name string
	sql  func(n names, schema string) string
}{
	{"outbox: events waiting for the relay, its indexes and NOTIFY trigger", outboxSQL},
	{"state-stored aggregates: state and unique keys", aggregatesSQL},
	{"event store: the events of event-sourced aggregates", eventsSQL},
	{"inbox: the events each handler has applied", inboxSQL},
	{"outbox: deadlines (scheduled rows, due time and key)", outboxScheduleSQL},
	{"process managers: the state of each instance", processesSQL},
	{"event store: global positions for the event stream, its index and NOTIFY trigger", eventPositionsSQL},
	{"event store: snapshots of event-sourced aggregates", snapshotsSQL},
	{"outbox: payloads as the codec's bytes (bytea), not re-rendered jsonb", outboxBytesSQL},
	{"projections: the checkpoint and status of each projection", projectionsSQL},
	{"outbox: discarded rows keep who discarded them, when and why", outboxDiscardSQL},
	{"outbox: the shard key of each row (a stable hash of its aggregate ID) for sharded relays", outboxShardSQL},
	{"dead letters: each consumer's dead letters and the events parked behind them", deadLettersSQL},
	{"outbox and event stream: a transaction can send its notification after commit instead of in it", notifyAfterCommitSQL},
	{"outbox: the pending index also holds each row's shard order, so that a relay leading some of the shards skips the others' rows in it", outboxShardOrderSQL},
}

// LatestVersion is the schema version this dddkit needs.
func LatestVersion() int { return len(steps) }

// Migrations returns every step for tables (nil = defaults). Because the
// outbox's NOTIFY channel names its schema, set tables.Schema to the
// schema you migrate (when it is empty, "public" is assumed).
func Migrations(tables *Tables) ([]Migration, error) {
	n, err := newNames(tables)
	if err != nil {
		return nil, err
	}
	schema := n.t.Schema
	if schema == "" {
		schema = "public"
		n.t.Schema = schema
		n.schema = ident(schema)
	}
	return migrations(n, schema), nil
}

func migrations(n names, schema string) []Migration {
	out := make([]Migration, len(steps))
	for i, s := range steps {
		out[i] = Migration{Version: i + 1, Name: s.name, SQL: s.sql(n, schema)}
	}
	return out
}

// Migrate brings the dddkit tables named by tables (nil = defaults) to
// [LatestVersion], creating the schema when it is set and missing. It
// applies only the steps the database lacks, all in one transaction, and
// is safe to run from several processes at once: an advisory lock makes
// the others wait and then find nothing to do.
//
// A database set up by an older dddkit (outbox.Migrate, repository.Migrate,
// Inbox.Migrate) migrates forward in place, without loss.
func Migrate(ctx context.Context, db DB, tables *Tables) error {
	n, err := newNames(tables)
	if err != nil || db == nil {
		return errors.Join(err, nilDB(db, "Migrate"))
	}
	err = pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error { return migrateTx(ctx, tx, n) })
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

func nilDB(db DB, what string) error {
	if db == nil {
		return fmt.Errorf("postgres: %s: nil DB", what)
	}
	return nil
}

// Version returns the schema version of the database (0 when dddkit
// never migrated it) and the version this dddkit needs. An application
// can refuse to start, or report unhealthy, while current < target.
func Version(ctx context.Context, db DB, tables *Tables) (current, target int, err error) {
	n, err := newNames(tables)
	if err != nil || db == nil {
		return 0, 0, errors.Join(err, nilDB(db, "Version"))
	}
	var reg *string
	if err := db.QueryRow(ctx, `SELECT to_regclass($1)::text`, n.q(n.t.Migrations)).Scan(&reg); err != nil {
		return 0, 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	if reg == nil {
		return 0, LatestVersion(), nil
	}
	if err := db.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+n.q(n.t.Migrations)).Scan(&current); err != nil {
		return 0, 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	return current, LatestVersion(), nil
}

// requireVersion returns ErrNotMigrated unless the database is current.
func requireVersion(ctx context.Context, db DB, tables *Tables) error {
	current, target, err := Version(ctx, db, tables)
	if err != nil {
		return err
	}
	if current < target {
		return fmt.Errorf("%w: schema version %d, need %d", ErrNotMigrated, current, target)
	}
	return nil
}

// migrateTx applies, in tx, the steps the database lacks.
func migrateTx(ctx context.Context, tx pgx.Tx, n names) error {
	schema := n.t.Schema
	if schema == "" {
		var cur *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&cur); err != nil {
			return fmt.Errorf("resolve current schema: %w", err)
		}
		if cur == nil {
			return errors.New("no schema of the search_path exists; set Tables.Schema")
		}
		schema = *cur
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("migrate", schema, n.t.Migrations)); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if n.schema != "" {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+n.schema); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
	}
	mt := n.q(n.t.Migrations)
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+mt+` (
	version    integer     PRIMARY KEY,
	name       text        NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("create migrations table: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+mt).Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	for _, m := range migrations(n, schema) {
		if m.Version <= current {
			continue
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("apply version %d (%s): %w", m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+mt+` (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
			return fmt.Errorf("record version %d: %w", m.Version, err)
		}
	}
	return nil
}

func outboxSQL(n names, schema string) string {
	table := n.t.Outbox
	t := n.q(table)
	return `
CREATE TABLE IF NOT EXISTS ` + t + ` (
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
	CONSTRAINT ` + ident(table+"_event_id_key") + ` UNIQUE (event_id),
	CONSTRAINT ` + ident(table+"_status_check") + ` CHECK (status IN ('pending', 'published', 'failed'))
);
COMMENT ON TABLE ` + t + ` IS 'dddkit transactional outbox: events written with the aggregate, published by the relay';

-- The relay reads pending rows in sequence order (a later step replaces
-- this index by one that also holds each row's shard order).
CREATE INDEX IF NOT EXISTS ` + ident(table+"_pending_idx") + ` ON ` + t + ` (seq) WHERE status = 'pending';
-- Rows that block the later events of their aggregate: failed ones and
-- ones waiting for a retry. Usually empty, so the relay's check is cheap.
CREATE INDEX IF NOT EXISTS ` + ident(table+"_blocked_idx") + ` ON ` + t + ` (aggregate_type, aggregate_id, seq)
	WHERE status = 'failed' OR next_attempt_at IS NOT NULL;
-- Retention deletes published rows by age.
CREATE INDEX IF NOT EXISTS ` + ident(table+"_published_idx") + ` ON ` + t + ` (published_at) WHERE status = 'published';

-- One notification per inserting statement (PostgreSQL folds identical
-- notifications of one transaction into one) wakes the relay at commit.
` + notifyTriggerSQL(n, schema, table)
}

func aggregatesSQL(n names, _ string) string {
	state, keys := n.q(n.t.Aggregates), n.q(n.t.AggregateKeys)
	return `
CREATE TABLE IF NOT EXISTS ` + state + ` (
	type       text        NOT NULL,
	id         text        NOT NULL,
	version    bigint      NOT NULL CHECK (version > 0),
	state      jsonb       NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (type, id)
) WITH (fillfactor = 90);
COMMENT ON TABLE ` + state + ` IS 'dddkit state-stored aggregates: the latest state and version of each';

CREATE TABLE IF NOT EXISTS ` + keys + ` (
	type  text NOT NULL,
	name  text NOT NULL,
	value text NOT NULL,
	id    text NOT NULL,
	PRIMARY KEY (type, name, value)
);
COMMENT ON TABLE ` + keys + ` IS 'dddkit unique keys of aggregates (such as an email address) and the aggregate holding each';
CREATE INDEX IF NOT EXISTS ` + ident(n.t.AggregateKeys+"_owner_idx") + ` ON ` + keys + ` (type, id);
`
}

func eventsSQL(n names, _ string) string {
	events := n.q(n.t.Events)
	return `
CREATE TABLE IF NOT EXISTS ` + events + ` (
	type        text        NOT NULL,
	id          text        NOT NULL,
	version     bigint      NOT NULL CHECK (version > 0),
	event_id    text        NOT NULL,
	name        text        NOT NULL,
	event_version integer   NOT NULL DEFAULT 1,
	payload     jsonb       NOT NULL,
	metadata    jsonb,
	occurred_at timestamptz NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (type, id, version),
	CONSTRAINT ` + ident(n.t.Events+"_event_id_key") + ` UNIQUE (event_id)
);
-- A table created by an older dddkit lacks the schema version of the payloads.
ALTER TABLE ` + events + ` ADD COLUMN IF NOT EXISTS event_version integer NOT NULL DEFAULT 1;
COMMENT ON TABLE ` + events + ` IS 'dddkit event store: the events of event-sourced aggregates, in version order';
`
}

func inboxSQL(n names, _ string) string {
	inbox := n.q(n.t.Inbox)
	return `
CREATE TABLE IF NOT EXISTS ` + inbox + ` (
	handler      text        NOT NULL,
	event_id     text        NOT NULL,
	event_name   text        NOT NULL DEFAULT '',
	processed_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (handler, event_id)
);
COMMENT ON TABLE ` + inbox + ` IS 'dddkit inbox: events whose effects each handler has committed';
CREATE INDEX IF NOT EXISTS ` + ident(n.t.Inbox+"_processed_at_idx") + ` ON ` + inbox + ` USING brin (processed_at);
`
}

// outboxScheduleSQL lets the outbox hold deadlines: rows with status
// 'scheduled', a due time and a key unique among scheduled rows. The
// relay turns due ones into pending rows (a new seq), so the indexes the
// relay reads pending rows by do not see them before.
func outboxScheduleSQL(n names, _ string) string {
	table := n.t.Outbox
	t := n.q(table)
	check := ident(table + "_status_check")
	return `
ALTER TABLE ` + t + ` ADD COLUMN IF NOT EXISTS due_at timestamptz;
ALTER TABLE ` + t + ` ADD COLUMN IF NOT EXISTS schedule_key text;
ALTER TABLE ` + t + ` DROP CONSTRAINT IF EXISTS ` + check + `;
ALTER TABLE ` + t + ` ADD CONSTRAINT ` + check + ` CHECK (status IN ('pending', 'published', 'failed', 'scheduled'));
-- One scheduled row per key: scheduling a key again replaces it.
CREATE UNIQUE INDEX IF NOT EXISTS ` + ident(table+"_schedule_key_idx") + ` ON ` + t + ` (schedule_key) WHERE status = 'scheduled';
-- The relay finds due rows, and the next due time, by due_at.
CREATE INDEX IF NOT EXISTS ` + ident(table+"_due_idx") + ` ON ` + t + ` (due_at) WHERE status = 'scheduled';
`
}

func processesSQL(n names, _ string) string {
	t := n.q(n.t.Processes)
	return `
CREATE TABLE IF NOT EXISTS ` + t + ` (
	process    text        NOT NULL,
	key        text        NOT NULL,
	state      jsonb       NOT NULL,
	ended      boolean     NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (process, key)
);
COMMENT ON TABLE ` + t + ` IS 'dddkit process managers: the state of each instance, by process and correlation key';
`
}

// eventPositionsSQL gives every event a global position from a sequence.
// Rows of an older dddkit get theirs in the order they were recorded
// (recorded_at, then type, id and version, so an aggregate's events keep
// their version order). New rows take theirs when they are inserted,
// under the append lock (see [EventStream]).
func eventPositionsSQL(n names, schema string) string {
	table := n.t.Events
	events := n.q(table)
	seq := n.q(table + "_position_seq")
	return `
CREATE SEQUENCE IF NOT EXISTS ` + seq + ` AS bigint;
ALTER TABLE ` + events + ` ADD COLUMN IF NOT EXISTS position bigint;
UPDATE ` + events + ` e SET position = o.position
FROM (
	SELECT type, id, version,
		(SELECT coalesce(max(position), 0) FROM ` + events + `) + row_number() OVER (ORDER BY recorded_at, type, id, version) AS position
	FROM ` + events + ` WHERE position IS NULL
) o
WHERE e.type = o.type AND e.id = o.id AND e.version = o.version;
SELECT setval(` + quoteLiteral(seq) + `, max(position)) FROM ` + events + ` HAVING max(position) IS NOT NULL;
ALTER SEQUENCE ` + seq + ` OWNED BY ` + events + `.position;
ALTER TABLE ` + events + ` ALTER COLUMN position SET DEFAULT nextval(` + quoteLiteral(seq) + `), ALTER COLUMN position SET NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS ` + ident(table+"_position_key") + ` ON ` + events + ` (position);
COMMENT ON COLUMN ` + events + `.position IS 'dddkit: the event''s place in the global order of the event stream';

-- One notification per inserting statement wakes the stream's readers
-- at commit.
` + notifyTriggerSQL(n, schema, table)
}

// notifyTriggerSQL creates the trigger that NOTIFYs channelName(schema,
// table) once per statement inserting into table, at commit: what wakes
// the outbox relay and the event stream's readers.
func notifyTriggerSQL(n names, schema, table string) string {
	fn := n.q(table + "_notify")
	return `CREATE OR REPLACE FUNCTION ` + fn + `() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify(TG_ARGV[0], '');
	RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER ` + ident(table+"_notify") + ` AFTER INSERT ON ` + n.q(table) + `
	FOR EACH STATEMENT EXECUTE FUNCTION ` + fn + `(` + quoteLiteral(channelName(schema, table)) + `);
`
}

// notifyAfterCommitSQL makes the NOTIFY triggers of the outbox and the
// event store skip a transaction that set notifySetting to
// notifyAfterCommit: its writer sends the notification itself once it
// committed, so that the commits do not wait for each other (notify.go
// says why). Other transactions are notified in the transaction, as
// before.
func notifyAfterCommitSQL(n names, _ string) string {
	var b strings.Builder
	for _, table := range []string{n.t.Outbox, n.t.Events} {
		b.WriteString(`
CREATE OR REPLACE FUNCTION ` + n.q(table+"_notify") + `() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF current_setting('` + notifySetting + `', true) IS DISTINCT FROM '` + notifyAfterCommit + `' THEN
		PERFORM pg_notify(TG_ARGV[0], '');
	END IF;
	RETURN NULL;
END
$$;
`)
	}
	return b.String()
}

// snapshotsSQL creates the snapshots table: the newest snapshot of each
// event-sourced aggregate, per schema version of its state.
func snapshotsSQL(n names, _ string) string {
	snapshots := n.q(n.t.Snapshots)
	return `
CREATE TABLE IF NOT EXISTS ` + snapshots + ` (
	type           text        NOT NULL,
	id             text        NOT NULL,
	schema_version integer     NOT NULL,
	version        bigint      NOT NULL CHECK (version > 0),
	state          bytea       NOT NULL,
	taken_at       timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (type, id, schema_version)
);
COMMENT ON TABLE ` + snapshots + ` IS 'dddkit snapshots of event-sourced aggregates: the state at a version, per schema version of the state';
`
}

// outboxBytesSQL turns the outbox's payload column into bytea, so that the
// relay publishes exactly the bytes the codec produced (jsonb re-renders
// a document: keys sorted by length, whitespace changed). Rows written
// before keep their JSON as UTF-8 text. Idempotent: a bytea column is left
// alone.
func outboxBytesSQL(n names, _ string) string {
	t := n.q(n.t.Outbox)
	return `
DO $migrate$
BEGIN
	IF (SELECT atttypid FROM pg_attribute
		WHERE attrelid = to_regclass(` + quoteLiteral(t) + `) AND attname = 'payload' AND NOT attisdropped) = 'jsonb'::regtype THEN
		ALTER TABLE ` + t + ` ALTER COLUMN payload TYPE bytea USING convert_to(payload::text, 'UTF8');
	END IF;
END
$migrate$;
COMMENT ON COLUMN ` + t + `.payload IS 'the event payload exactly as the codec encoded it (JSON, UTF-8), published byte for byte';
`
}

// outboxShardSQL gives every outbox row its shard key: a stable hash of
// its aggregate ID (PostgreSQL's hashtext, non-negative), computed by the
// database when the row is written, so every writer agrees and no insert
// names it. A relay's shard of a row is shard_key % OutboxConfig.Shards.
// Adding the stored generated column rewrites the table once, computing
// the key of every row already there (old rows stay readable and are
// relayed like new ones). Idempotent.
func outboxShardSQL(n names, _ string) string {
	t := n.q(n.t.Outbox)
	return `
ALTER TABLE ` + t + ` ADD COLUMN IF NOT EXISTS shard_key integer NOT NULL
	GENERATED ALWAYS AS (hashtext(aggregate_id) & 2147483647) STORED;
COMMENT ON COLUMN ` + t + `.shard_key IS 'dddkit: stable hash of aggregate_id; the row''s relay shard is shard_key modulo the number of shards';
`
}

// outboxShardOrderSQL replaces the pending index on (seq) by one on
// (seq, shard order) (shardorder.go): the relay walks it in sequence order
// as before, and one leading some of the shards checks their range of
// shard orders in the index instead of reading every other shard's row
// from the table. Replacing it, not adding a second, keeps the writes at
// one pending-index entry per row. Building it locks the outbox against
// writes for as long as it takes: an outbox holds the events not yet
// published, usually few. Idempotent.
func outboxShardOrderSQL(n names, _ string) string {
	t := n.q(n.t.Outbox)
	return `
CREATE INDEX IF NOT EXISTS ` + ident(n.t.Outbox+"_pending_shard_idx") + ` ON ` + t + ` (seq, (` + shardOrderSQL("shard_key") + `))
	WHERE status = 'pending';
DROP INDEX IF EXISTS ` + n.q(n.t.Outbox+"_pending_idx") + `;
`
}

// projectionsSQL creates the table of [ProjectionStore]: the position and
// status of each projection.
func projectionsSQL(n names, _ string) string {
	t := n.q(n.t.Projections)
	return `
CREATE TABLE IF NOT EXISTS ` + t + ` (
	name           text        PRIMARY KEY,
	position       bigint      NOT NULL DEFAULT 0,
	applied        bigint      NOT NULL DEFAULT 0,
	last_event_at  timestamptz,
	last_error     text        NOT NULL DEFAULT '',
	last_error_at  timestamptz,
	rebuilding     boolean     NOT NULL DEFAULT false,
	rebuild_target bigint      NOT NULL DEFAULT 0,
	updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ` + t + ` IS 'dddkit projections: how far each projection has applied the event store, and its status';
`
}

// outboxDiscardSQL lets the outbox keep discarded rows, with who
// discarded them, when and why, instead of deleting them: the status
// 'discarded' holds back nothing, and an operator can still read what
// was not published. Rows of an older dddkit are unchanged.
func outboxDiscardSQL(n names, _ string) string {
	table := n.t.Outbox
	t := n.q(table)
	check := ident(table + "_status_check")
	return `
ALTER TABLE ` + t + ` ADD COLUMN IF NOT EXISTS discarded_by text;
ALTER TABLE ` + t + ` ADD COLUMN IF NOT EXISTS discard_reason text;
ALTER TABLE ` + t + ` ADD COLUMN IF NOT EXISTS discarded_at timestamptz;
ALTER TABLE ` + t + ` DROP CONSTRAINT IF EXISTS ` + check + `;
ALTER TABLE ` + t + ` ADD CONSTRAINT ` + check + ` CHECK (status IN ('pending', 'published', 'failed', 'scheduled', 'discarded'));
`
}

// deadLettersSQL creates the tables of [DeadLetters]: one row per dead
// letter (handler and key) and the events it holds, the dead one
// included, in the order they arrived.
func deadLettersSQL(n names, _ string) string {
	dl, parked := n.q(n.t.DeadLetters), n.q(n.t.Parked)
	return `
CREATE TABLE IF NOT EXISTS ` + dl + ` (
	handler     text        NOT NULL,
	key         text        NOT NULL,
	topic       text        NOT NULL,
	event_id    text        NOT NULL,
	reason      text        NOT NULL,
	dead_at     timestamptz NOT NULL DEFAULT now(),
	release     text        NOT NULL DEFAULT '',
	released_at timestamptz,
	PRIMARY KEY (handler, key),
	CONSTRAINT ` + ident(n.t.DeadLetters+"_release_check") + ` CHECK (release IN ('', 'replay', 'skip'))
);
COMMENT ON TABLE ` + dl + ` IS 'dddkit dead letters: per consumer and key, the event it gave up on; the key''s later events wait in the parked table';

CREATE TABLE IF NOT EXISTS ` + parked + ` (
	seq        bigserial   PRIMARY KEY,
	handler    text        NOT NULL,
	key        text        NOT NULL,
	event_id   text        NOT NULL,
	event_name text        NOT NULL DEFAULT '',
	metadata   jsonb       NOT NULL,
	payload    bytea       NOT NULL,
	parked_at  timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT ` + ident(n.t.Parked+"_event_key") + ` UNIQUE (handler, event_id)
);
COMMENT ON TABLE ` + parked + ` IS 'dddkit parked events: the events each dead letter holds (the dead one first), as they arrived, in order';
CREATE INDEX IF NOT EXISTS ` + ident(n.t.Parked+"_key_idx") + ` ON ` + parked + ` (handler, key, seq);
`
}
