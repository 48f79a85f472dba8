package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/check"
	"github.com/dddkit/dddkit/internal/telemetry"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/outbox"
)

// Outbox defaults.
const (
	DefaultLeaderPollInterval = 500 * time.Millisecond
	DefaultCleanupInterval    = time.Minute
)

// OutboxConfig configures an [Outbox]. The zero value (or nil) is
// usable: default table names, published rows deleted at once.
type OutboxConfig struct {
	// Tables names the tables; Tables.Outbox is this outbox.
	Tables Tables
	// Retention keeps published rows for this long (for inspection and
	// replay) before a relay deletes them; 0 deletes a row as soon as it
	// is published.
	Retention time.Duration
	// CleanupInterval is how often the leading relay deletes published
	// rows older than Retention (default 1m); unused when Retention is 0.
	CleanupInterval time.Duration
	// LeaderPollInterval is how often a relay that is not the leader
	// tries to become it (default 500ms).
	LeaderPollInterval time.Duration
	// Logger receives the leader's changes; nil discards them.
	Logger *slog.Logger
}

// Validate reports every problem of the configuration at once.
func (c *OutboxConfig) Validate() error {
	if c == nil {
		return nil
	}
	e := check.New("postgres: OutboxConfig")
	e.Add(c.Tables.Validate())
	check.NotNegative(e, "Retention", c.Retention)
	check.NotNegative(e, "CleanupInterval", c.CleanupInterval)
	check.NotNegative(e, "LeaderPollInterval", c.LeaderPollInterval)
	return e.Err()
}

// Outbox is the transactional outbox in PostgreSQL. Repositories write
// their events into it in the transaction that saves the aggregate
// (see [UnitOfWork]); an [outbox.Relay] reads it as its [outbox.Source]
// and publishes the events. It also has the operator's calls: [Outbox.Stats],
// [Outbox.List], [Outbox.Retry], [Outbox.Discard].
//
// Create it with [NewOutbox]; migrate first with [Migrate].
type Outbox struct {
	db  DB
	reg *eventbus.Registry
	cfg OutboxConfig
	n   names
	log *slog.Logger

	valuesSQL [valuesRows + 1]string
	unnestSQL string

	mu       sync.Mutex
	resolved *resolvedOutbox
	nextDue  atomic.Int64 // Unix ns when the next deadline is due; 0: none
}

// resolvedOutbox is the outbox table as found in the database: its
// schema is needed literally for the NOTIFY channel.
type resolvedOutbox struct {
	qtable, channel, schema string
	fetchSQL, publishedSQL  string
	attemptsSQL             string
	promoteSQL, cancelSQL   string // deadlines (deadline.go)
	scheduleSQL             string
}

// valuesRows is the largest write done as a multi-row VALUES insert;
// larger writes go through unnest arrays (one statement either way).
const valuesRows = 32

const insertColumns = `(event_id, aggregate_type, aggregate_id, aggregate_version, event_name, event_version, payload, headers, occurred_at)`

const insertArgs = 9

// NewOutbox returns the outbox in db's tables (cfg nil = defaults).
// reg is the service's one event registry: events are encoded with it,
// and an unregistered event is refused when it is written.
func NewOutbox(db DB, reg *eventbus.Registry, cfg *OutboxConfig) (*Outbox, error) {
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("postgres: NewOutbox: nil DB"))
	}
	if reg == nil {
		errs = append(errs, errors.New("postgres: NewOutbox: nil Registry"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := OutboxConfig{}
	if cfg != nil {
		c = *cfg
	}
	if c.CleanupInterval == 0 {
		c.CleanupInterval = DefaultCleanupInterval
	}
	if c.LeaderPollInterval == 0 {
		c.LeaderPollInterval = DefaultLeaderPollInterval
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n, err := newNames(&c.Tables)
	if err != nil {
		return nil, err
	}
	o := &Outbox{db: db, reg: reg, cfg: c, n: n, log: log}
	table := n.q(n.t.Outbox)
	for rows := 1; rows <= valuesRows; rows++ {
		var b strings.Builder
		b.WriteString("INSERT INTO " + table + " " + insertColumns + " VALUES ")
		for i := range rows {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for j := range insertArgs {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(i*insertArgs + j + 1))
			}
			b.WriteByte(')')
		}
		o.valuesSQL[rows] = b.String()
	}
	o.unnestSQL = "INSERT INTO " + table + " " + insertColumns + `
SELECT e, t, a, v, n, ev, p, h::jsonb, o
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[], $7::bytea[], $8::text[], $9::timestamptz[])
	AS u(e, t, a, v, n, ev, p, h, o)`
	return o, nil
}

// Tables returns the table names this outbox was configured with.
func (o *Outbox) Tables() Tables { return o.cfg.Tables }

// Registry returns the event registry the outbox encodes with.
func (o *Outbox) Registry() *eventbus.Registry { return o.reg }

// Write inserts events into the outbox, in the unit of work in ctx when
// there is one (so they commit or roll back with it), and as a statement
// of its own otherwise. It checks every event first: an event without
// ID, name, aggregate or payload, or one not registered, is refused with
// [outbox.ErrInvalidEvent] and nothing is written.
func (o *Outbox) Write(ctx context.Context, events ...aggregate.Envelope) error {
	if len(events) == 0 {
		return nil
	}
	rows, err := o.encode(events)
	if err != nil {
		return err
	}
	return o.write(ctx, querier(ctx, o.db), rows)
}

// encode checks and encodes events before anything is written, so that
// an unregistered event fails a save before a statement runs.
func (o *Outbox) encode(events []aggregate.Envelope) ([]outbox.Pending, error) {
	return outbox.Encode(o.reg, events...)
}

func (o *Outbox) write(ctx context.Context, q DB, rows []outbox.Pending) (err error) {
	if len(rows) == 0 {
		return nil
	}
	ctx, span := telemetry.StartOutboxWrite(ctx, len(rows))
	defer func() { telemetry.End(span, err) }()
	headersOf := func(md aggregate.Metadata) (*string, error) {
		h := wire.MetadataHeaders(md)
		if h == nil {
			return nil, nil
		}
		b, err := json.Marshal(h)
		if err != nil {
			return nil, err
		}
		s := string(b)
		return &s, nil
	}
	if len(rows) <= valuesRows {
		args := make([]any, 0, insertArgs*len(rows))
		for i := range rows {
			r := &rows[i]
			headers, err := headersOf(r.Event.Metadata)
			if err != nil {
				return fmt.Errorf("%w: %s %s: encode metadata: %w", outbox.ErrInvalidEvent, r.Event.Name, r.Event.ID, err)
			}
			args = append(args, r.Event.ID, r.Event.AggregateType, r.Event.AggregateID, r.Event.Version, r.Event.Name,
				int32(min(r.SchemaVersion, 1<<30)), r.Payload, headers, r.Event.OccurredAt)
		}
		if _, err := q.Exec(ctx, o.valuesSQL[len(rows)], args...); err != nil {
			return fmt.Errorf("postgres: outbox: write %d events: %w", len(rows), err)
		}
		return nil
	}
	var (
		ids, types, aggIDs, evNames = make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
		payloads                    = make([][]byte, len(rows))
		headers                     = make([]*string, len(rows))
		versions                    = make([]int64, len(rows))
		evVersions                  = make([]int32, len(rows))
		times                       = make([]time.Time, len(rows))
	)
	for i := range rows {
		r := &rows[i]
		ids[i], types[i], aggIDs[i], evNames[i] = r.Event.ID, r.Event.AggregateType, r.Event.AggregateID, r.Event.Name
		payloads[i] = r.Payload
		h, err := headersOf(r.Event.Metadata)
		if err != nil {
			return fmt.Errorf("%w: %s %s: encode metadata: %w", outbox.ErrInvalidEvent, r.Event.Name, r.Event.ID, err)
		}
		headers[i] = h
		versions[i], times[i], evVersions[i] = r.Event.Version, r.Event.OccurredAt, int32(min(r.SchemaVersion, 1<<30))
	}
	if _, err := q.Exec(ctx, o.unnestSQL, ids, types, aggIDs, versions, evNames, evVersions, payloads, headers, times); err != nil {
		return fmt.Errorf("postgres: outbox: write %d events: %w", len(rows), err)
	}
	return nil
}

// resolve finds the outbox table (for the literal schema of its NOTIFY
// channel) and checks that the database is migrated.
func (o *Outbox) resolve(ctx context.Context) (*resolvedOutbox, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.resolved != nil {
		return o.resolved, nil
	}
	if err := requireVersion(ctx, o.db, &o.cfg.Tables); err != nil {
		return nil, err
	}
	var schema *string
	err := o.db.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1)`, o.n.q(o.n.t.Outbox)).Scan(&schema)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && schema == nil) {
		return nil, fmt.Errorf("%w: no table %s", ErrNotMigrated, o.n.q(o.n.t.Outbox))
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: outbox: find table %s: %w", o.n.t.Outbox, err)
	}
	t := pgx.Identifier{*schema, o.n.t.Outbox}.Sanitize()
	r := &resolvedOutbox{qtable: t, schema: *schema, channel: channelName(*schema, o.n.t.Outbox)}
	r.fetchSQL = `SELECT o.seq, o.event_id, o.aggregate_type, o.aggregate_id, o.aggregate_version, o.event_name,
	o.event_version, o.payload, o.headers, o.occurred_at, o.attempts
FROM ` + t + ` o
WHERE o.status = 'pending'
	AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= now())
	AND NOT EXISTS (
		SELECT 1 FROM ` + t + ` b
		WHERE b.aggregate_type = o.aggregate_type AND b.aggregate_id = o.aggregate_id AND b.seq < o.seq
			AND (b.status = 'failed' OR (b.status = 'pending' AND b.next_attempt_at > now())))
ORDER BY o.seq
LIMIT $1`
	if o.cfg.Retention == 0 {
		r.publishedSQL = `DELETE FROM ` + t + ` WHERE seq = ANY($1)`
	} else {
		r.publishedSQL = `UPDATE ` + t + ` SET status = 'published', published_at = now(), next_attempt_at = NULL WHERE seq = ANY($1)`
	}
	r.attemptsSQL = `UPDATE ` + t + ` o SET
	attempts = u.attempts,
	last_error = u.err,
	status = CASE WHEN u.final THEN 'failed' ELSE 'pending' END,
	next_attempt_at = CASE WHEN u.final THEN NULL ELSE now() + u.delay_ms * interval '1 millisecond' END
FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bool[], $5::bigint[]) AS u(seq, attempts, err, final, delay_ms)
WHERE o.seq = u.seq`
	if err := o.scheduleSQLs(ctx, r); err != nil {
		return nil, err
	}
	o.resolved = r
	return r, nil
}

// acquirer is what the relay's leader needs of the DB: a connection of
// its own for the session-level advisory lock and LISTEN.
type acquirer interface {
	Acquire(ctx context.Context) (*pgxpool.Conn, error)
}

// Lead implements [outbox.Source]: it takes a session-level advisory lock
// on a connection of its own (so one relay per outbox table leads, across
// processes), LISTENs for the outbox's notifications, and calls fn while
// it holds both. The DB must be a *pgxpool.Pool (or have its Acquire
// method).
//
// Lead's error wraps [outbox.ErrUnusable], so that the relay stops
// instead of retrying, when the DB cannot lend a connection (it has no
// Acquire method) and when the database is not migrated (the error wraps
// [ErrNotMigrated] too).
func (o *Outbox) Lead(ctx context.Context, fn func(ctx context.Context, wake <-chan struct{}) error) error {
	pool, ok := o.db.(acquirer)
	if !ok {
		return fmt.Errorf("%w: postgres: outbox relay: the DB is a %T; the relay needs a *pgxpool.Pool to hold a connection for its leader lock", outbox.ErrUnusable, o.db)
	}
	r, err := o.resolve(ctx)
	if errors.Is(err, ErrNotMigrated) {
		return fmt.Errorf("%w: %w", outbox.ErrUnusable, err)
	}
	if err != nil {
		return err
	}
	pc, err := pool.Acquire(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: outbox relay connection: %w", err)
	}
	conn := pc.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = conn.Close(cctx) // ends the session: releases the lock, stops LISTEN
	}()

	key := lockKey("outbox/relay", r.schema, o.n.t.Outbox)
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("postgres: outbox leader lock: %w", err)
		}
		if got {
			break
		}
		t := time.NewTimer(o.cfg.LeaderPollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{r.channel}.Sanitize()); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: outbox listen: %w", err)
	}
	o.log.Info("postgres: outbox relay is the leader", "table", r.qtable)

	lctx, cancel := context.WithCancelCause(ctx)
	wake := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if _, err := conn.WaitForNotification(lctx); err != nil {
				if lctx.Err() == nil {
					cancel(fmt.Errorf("postgres: outbox leader connection lost: %w", err))
				}
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	})
	if o.cfg.Retention > 0 {
		wg.Go(func() { o.cleanup(lctx) })
	}
	err = fn(lctx, wake)
	lost := context.Cause(lctx)
	cancel(nil)
	wg.Wait()
	if err == nil && ctx.Err() == nil && lost != nil {
		err = lost
	}
	return err
}

// cleanup deletes published rows older than Retention every
// CleanupInterval until ctx ends.
func (o *Outbox) cleanup(ctx context.Context) {
	t := time.NewTicker(o.cfg.CleanupInterval)
	defer t.Stop()
	for {
		if _, err := o.DeletePublished(ctx, o.cfg.Retention); err != nil && ctx.Err() == nil {
			o.log.Warn("postgres: outbox cleanup failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Fetch implements [outbox.Source].
func (o *Outbox) Fetch(ctx context.Context, limit int) ([]outbox.Pending, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return nil, err
	}
	b := &pgx.Batch{}
	b.Queue(r.promoteSQL) // due deadlines become pending (deadline.go)
	b.Queue(r.fetchSQL, limit)
	br := o.db.SendBatch(ctx, b)
	defer br.Close()
	if err := o.readPromoted(br); err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("postgres: outbox: fetch pending events: %w", err)
	}
	defer rows.Close()
	out := make([]outbox.Pending, 0, min(limit, 256))
	var headers []byte
	for rows.Next() {
		var p outbox.Pending
		headers = headers[:0]
		if err := rows.Scan(&p.Seq, &p.Event.ID, &p.Event.AggregateType, &p.Event.AggregateID, &p.Event.Version,
			&p.Event.Name, &p.SchemaVersion, &p.Payload, &headers, &p.Event.OccurredAt, &p.Attempts); err != nil {
			return nil, fmt.Errorf("postgres: outbox: read pending event: %w", err)
		}
		if len(headers) > 0 {
			var h map[string]string
			if err := json.Unmarshal(headers, &h); err != nil {
				return nil, fmt.Errorf("postgres: outbox: event %s: decode headers: %w", p.Event.ID, err)
			}
			p.Event.Metadata = wire.ParseMetadata(h)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: outbox: fetch pending events: %w", err)
	}
	rows.Close()
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("postgres: outbox: fetch pending events: %w", err)
	}
	return out, nil
}

// MarkPublished implements [outbox.Source].
func (o *Outbox) MarkPublished(ctx context.Context, seqs []int64) error {
	r, err := o.resolve(ctx)
	if err != nil {
		return err
	}
	if _, err := o.db.Exec(ctx, r.publishedSQL, seqs); err != nil {
		return fmt.Errorf("postgres: outbox: mark %d events published: %w", len(seqs), err)
	}
	return nil
}

// MarkAttempts implements [outbox.Source].
func (o *Outbox) MarkAttempts(ctx context.Context, as []outbox.Attempt) error {
	r, err := o.resolve(ctx)
	if err != nil {
		return err
	}
	seqs := make([]int64, len(as))
	counts := make([]int32, len(as))
	errs := make([]string, len(as))
	finals := make([]bool, len(as))
	delays := make([]int64, len(as))
	for i, a := range as {
		seqs[i], counts[i], errs[i], finals[i], delays[i] = a.Seq, int32(min(a.Attempts, 1<<30)), truncate(a.Err, 2000), a.Final, a.Delay.Milliseconds()
	}
	if _, err := o.db.Exec(ctx, r.attemptsSQL, seqs, counts, errs, finals, delays); err != nil {
		return fmt.Errorf("postgres: outbox: record %d failed attempts: %w", len(as), err)
	}
	return nil
}

// truncate cuts s to at most n bytes of valid UTF-8 without NUL bytes
// (PostgreSQL text rejects both).
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Stats counts pending, retrying and failed rows and measures the age of
// the oldest pending one. It implements [outbox.Source].
func (o *Outbox) Stats(ctx context.Context) (outbox.Stats, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return outbox.Stats{}, err
	}
	t := r.qtable
	var (
		s      outbox.Stats
		oldest *float64
	)
	err = o.db.QueryRow(ctx, `SELECT
	(SELECT count(*) FROM `+t+` WHERE status = 'pending'),
	(SELECT count(*) FROM `+t+` WHERE status = 'pending' AND attempts > 0),
	(SELECT count(*) FROM `+t+` WHERE status = 'failed'),
	(SELECT greatest(extract(epoch FROM now() - greatest(created_at, coalesce(due_at, created_at)))::float8, 0) FROM `+t+` WHERE status = 'pending' ORDER BY seq LIMIT 1),
	(SELECT count(*) FROM `+t+` WHERE status = 'scheduled')`).
		Scan(&s.Pending, &s.Retrying, &s.Failed, &oldest, &s.Scheduled)
	if err != nil {
		return outbox.Stats{}, fmt.Errorf("postgres: outbox: stats: %w", err)
	}
	if oldest != nil {
		s.OldestPending = time.Duration(*oldest * float64(time.Second))
	}
	return s, nil
}

const recordColumns = `seq, event_id, aggregate_type, aggregate_id, aggregate_version, event_name, event_version, payload, headers,
	occurred_at, status, attempts, coalesce(last_error, ''), created_at, next_attempt_at, published_at, due_at, coalesce(schedule_key, '')`

// List returns up to limit rows with status after sequence afterSeq, in
// sequence order (limit <= 0: all). Page with the last row's Seq.
func (o *Outbox) List(ctx context.Context, status outbox.Status, afterSeq int64, limit int) ([]outbox.Record, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return nil, err
	}
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := o.db.Query(ctx, `SELECT `+recordColumns+` FROM `+r.qtable+`
		WHERE status = $1 AND seq > $2 ORDER BY seq LIMIT $3`, string(status), afterSeq, lim)
	if err != nil {
		return nil, fmt.Errorf("postgres: outbox: list %s rows: %w", status, err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: outbox: list %s rows: %w", status, err)
	}
	return recs, nil
}

func scanRecords(rows pgx.Rows) ([]outbox.Record, error) {
	defer rows.Close()
	var out []outbox.Record
	for rows.Next() {
		var (
			r          outbox.Record
			headers    []byte
			status     string
			next, publ *time.Time
			due        *time.Time
		)
		if err := rows.Scan(&r.Seq, &r.Event.ID, &r.Event.AggregateType, &r.Event.AggregateID, &r.Event.Version,
			&r.Event.Name, &r.EventVersion, &r.RawPayload, &headers, &r.Event.OccurredAt, &status, &r.Attempts, &r.LastError,
			&r.CreatedAt, &next, &publ, &due, &r.ScheduleKey); err != nil {
			return nil, err
		}
		r.Status = outbox.Status(status)
		if next != nil {
			r.NextAttemptAt = *next
		}
		if publ != nil {
			r.PublishedAt = *publ
		}
		if due != nil {
			r.DueAt = *due
		}
		if len(headers) > 0 {
			var h map[string]string
			if err := json.Unmarshal(headers, &h); err != nil {
				return nil, fmt.Errorf("event %s: decode headers: %w", r.Event.ID, err)
			}
			r.Event.Metadata = wire.ParseMetadata(h)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Retry puts failed rows (by sequence) back to pending with a fresh
// attempt count and wakes the relay; it returns how many it changed.
// With no seqs it retries every failed row.
func (o *Outbox) Retry(ctx context.Context, seqs ...int64) (int64, error) {
	where, args := ``, []any{}
	if len(seqs) > 0 {
		where, args = `AND seq = ANY($1)`, []any{seqs}
	}
	return o.change(ctx, "retry", `UPDATE %s SET status = 'pending', attempts = 0, next_attempt_at = NULL
		WHERE status = 'failed' `+where, args...)
}

// Discard deletes failed rows (by sequence), so the later events of their
// aggregates flow again; it returns how many it deleted. Discarding loses
// those events: prefer Retry once the cause is fixed.
func (o *Outbox) Discard(ctx context.Context, seqs ...int64) (int64, error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	return o.change(ctx, "discard", `DELETE FROM %s WHERE status = 'failed' AND seq = ANY($1)`, seqs)
}

func (o *Outbox) change(ctx context.Context, what, sqlf string, args ...any) (int64, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return 0, err
	}
	tag, err := o.db.Exec(ctx, fmt.Sprintf(sqlf, r.qtable), args...)
	if err != nil {
		return 0, fmt.Errorf("postgres: outbox: %s failed rows: %w", what, err)
	}
	if tag.RowsAffected() > 0 {
		if _, err := o.db.Exec(ctx, `SELECT pg_notify($1, '')`, r.channel); err != nil {
			return tag.RowsAffected(), fmt.Errorf("postgres: outbox: notify relay: %w", err)
		}
	}
	return tag.RowsAffected(), nil
}

// DeletePublished deletes published rows older than olderThan (kept when
// OutboxConfig.Retention > 0) and returns how many it deleted. The
// leading relay calls it every CleanupInterval.
func (o *Outbox) DeletePublished(ctx context.Context, olderThan time.Duration) (int64, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return 0, err
	}
	sql := `DELETE FROM ` + r.qtable + ` WHERE seq IN (
	SELECT seq FROM ` + r.qtable + ` WHERE status = 'published' AND published_at <= now() - $1 * interval '1 millisecond' LIMIT 10000)`
	var total int64
	for {
		tag, err := o.db.Exec(ctx, sql, olderThan.Milliseconds())
		if err != nil {
			return total, fmt.Errorf("postgres: outbox: delete published rows: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			return total, nil
		}
	}
}

var _ outbox.Source = (*Outbox)(nil)
