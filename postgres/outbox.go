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
	"github.com/dddkit/dddkit/internal/aggstore"
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
	// CleanupInterval is how often the relay leading shard 0 deletes
	// published rows older than Retention (default 1m); unused when
	// Retention is 0.
	CleanupInterval time.Duration
	// LeaderPollInterval is how often a relay rebalances the shards: a
	// relay that leads none tries to take its share, one above its share
	// hands shards over, and each checks that its locks are still held
	// (default 500ms). Relays also rebalance at once when another joins,
	// hands shards over or stops (a NOTIFY on the outbox's channel); the
	// interval bounds how long one that died unannounced (its process
	// killed, its session ended by the server) leaves its shards unled.
	LeaderPollInterval time.Duration
	// Shards is the number of shards the outbox's rows are spread over,
	// by a stable hash of their aggregate ID (default 16, at most
	// [MaxShards]). The relays running on the outbox share them: each
	// leads at most ceil(Shards / relays), so N replicas relay in
	// parallel, every aggregate's events by one relay at a time and in
	// order; one relay alone leads all. Every relay of one outbox must
	// use the same number; relays started with another number wait until
	// the ones holding shards stop. 1 makes one relay lead everything.
	Shards int
	// LeaderTimeout bounds how long a relay goes on after its lock
	// connection stopped answering (a half-open connection, a killed
	// session whose reply was lost): every claim and mark runs on that
	// connection and must answer within it, and TCP keepalives and
	// TCP_USER_TIMEOUT (on both ends) close the connection when it is
	// silent for about as long. Default 10s.
	LeaderTimeout time.Duration
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
	check.NotNegative(e, "Shards", c.Shards)
	check.NotNegative(e, "LeaderTimeout", c.LeaderTimeout)
	if c.Shards > MaxShards {
		e.Addf("Shards %d is above the limit of %d", c.Shards, MaxShards)
	}
	return e.Err()
}

// Outbox is the transactional outbox in PostgreSQL. Repositories write
// their events into it in the transaction that saves the aggregate
// (see [UnitOfWork]); an [outbox.Relay] reads it as its [outbox.Source]
// and publishes the events. It also has the operator's calls: [Outbox.Stats],
// [Outbox.List], [Outbox.Get], [Outbox.Retry], [Outbox.Discard],
// [Outbox.Leaders].
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

	leading chan struct{}               // one Lead session at a time (shard.go)
	sess    atomic.Pointer[leadSession] // the running one

	notifiers sync.Map // notifierKey → *notifier: who notifies after commit (notify.go)
}

// resolvedOutbox is the outbox table as found in the database: its
// schema is needed literally for the NOTIFY channel.
type resolvedOutbox struct {
	qtable, channel, schema string
	keys                    shardKeys // advisory locks of its shards (shard.go)
	fetchSQL, publishedSQL  string
	fetchShardsSQL          string // fetchSQL of some shards' lane (lanes.go)
	fetchBesideSQL          string // Fetch beside batches in flight, of every shard (window.go)
	windowSQL               string // the aggregates in parts of the batches in flight (window.go)
	attemptsSQL             string
	promoteSQL, cancelSQL   string // deadlines (deadline.go)
	scheduleSQL             string
}

// valuesRows is the largest write done as a multi-row VALUES insert, by
// the outbox's Write and by a repository's save (saveSQLs); larger writes
// go through unnest arrays (one statement either way), whose encoding
// costs pgx more.
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
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.LeaderTimeout == 0 {
		c.LeaderTimeout = DefaultLeaderTimeout
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n, err := newNames(&c.Tables)
	if err != nil {
		return nil, err
	}
	o := &Outbox{db: db, reg: reg, cfg: c, n: n, log: log, leading: make(chan struct{}, 1)}
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
	o.unnestSQL = o.insertFrom(1, "")
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
	sql, args, err := o.insert(rows)
	if err != nil {
		return err
	}
	o.notifyInUnit(ctx, false)
	onOwn := poolOf(q) // not a unit's (or a caller's) transaction
	if notifiesAfterCommit(ctx, q, !onOwn) {
		// On its own on a pool, or in a unit of work on one: the trigger
		// skips the transaction, and the relay is notified after it
		// commits.
		b := &pgx.Batch{}
		b.Queue(setNotifyAfterCommit)
		b.Queue(sql, args...)
		if err := q.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("postgres: outbox: write %d events: %w", len(rows), err)
		}
		if onOwn {
			o.notifyCommitted(q, false)
		}
		return nil
	}
	if _, err := q.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("postgres: outbox: write %d events: %w", len(rows), err)
	}
	return nil
}

// insert returns the one statement that inserts rows: a multi-row VALUES
// insert up to valuesRows rows, an insert from unnest arrays beyond.
func (o *Outbox) insert(rows []outbox.Pending) (string, []any, error) {
	if len(rows) <= valuesRows {
		args, err := insertValues(make([]any, 0, insertArgs*len(rows)), rows)
		return o.valuesSQL[len(rows)], args, err
	}
	args, err := insertArrays(rows)
	return o.unnestSQL, args, err
}

// insertValues appends the insertArgs values of each row to args, row
// after row: the arguments of a multi-row VALUES insert.
func insertValues(args []any, rows []outbox.Pending) ([]any, error) {
	for i := range rows {
		r := &rows[i]
		headers, err := headersOf(r)
		if err != nil {
			return nil, err
		}
		args = append(args, r.Event.ID, r.Event.AggregateType, r.Event.AggregateID, r.Event.Version, r.Event.Name,
			int32(min(r.SchemaVersion, 1<<30)), r.Payload, headers, r.Event.OccurredAt)
	}
	return args, nil
}

// insertValuesFrom is insertFrom for rows rows given as insertValues
// arguments: a VALUES list, typed, which costs the database less than
// unnest arrays for the few events of one save.
func (o *Outbox) insertValuesFrom(first, rows int, where string) string {
	var b strings.Builder
	b.WriteString("INSERT INTO " + o.n.q(o.n.t.Outbox) + " " + insertColumns + "\nSELECT * FROM (VALUES ")
	types := [insertArgs]string{"text", "text", "text", "bigint", "text", "int", "bytea", "jsonb", "timestamptz"}
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, typ := range types {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(first+i*insertArgs+j) + "::" + typ)
		}
		b.WriteByte(')')
	}
	b.WriteString(") AS v")
	if where != "" {
		b.WriteString("\nWHERE " + where)
	}
	return b.String()
}

// insertFrom is the INSERT of outbox rows given as the insertArgs arrays
// of insertArrays, in the parameters $first onwards, of the rows for
// which where holds (where may be empty): the outbox part of a statement
// that writes the rows only when its other parts succeed.
func (o *Outbox) insertFrom(first int, where string) string {
	p := func(i int, typ string) string { return "$" + strconv.Itoa(first+i) + "::" + typ }
	sql := "INSERT INTO " + o.n.q(o.n.t.Outbox) + " " + insertColumns + `
SELECT e, t, a, v, n, ev, p, h::jsonb, o
FROM unnest(` + p(0, "text[]") + `, ` + p(1, "text[]") + `, ` + p(2, "text[]") + `, ` + p(3, "bigint[]") + `, ` +
		p(4, "text[]") + `, ` + p(5, "int[]") + `, ` + p(6, "bytea[]") + `, ` + p(7, "text[]") + `, ` + p(8, "timestamptz[]") + `)
	AS u(e, t, a, v, n, ev, p, h, o)`
	if where != "" {
		sql += "\nWHERE " + where
	}
	return sql
}

// insertArrays returns the insertArgs column arrays of rows, the
// arguments of insertFrom.
func insertArrays(rows []outbox.Pending) ([]any, error) {
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
		h, err := headersOf(r)
		if err != nil {
			return nil, err
		}
		headers[i] = h
		versions[i], times[i], evVersions[i] = r.Event.Version, r.Event.OccurredAt, int32(min(r.SchemaVersion, 1<<30))
	}
	return []any{ids, types, aggIDs, versions, evNames, evVersions, payloads, headers, times}, nil
}

// headersOf is the headers column of r: its metadata as wire headers in
// JSON, nil when it has none.
func headersOf(r *outbox.Pending) (*string, error) {
	h := wire.MetadataHeaders(r.Event.Metadata)
	if h == nil {
		return nil, nil
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: encode metadata: %w", outbox.ErrInvalidEvent, r.Event.Name, r.Event.ID, err)
	}
	s := string(b)
	return &s, nil
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
	r := &resolvedOutbox{qtable: t, schema: *schema, channel: channelName(*schema, o.n.t.Outbox), keys: newShardKeys(*schema, o.n.t.Outbox)}
	const columns = `o.seq, o.event_id, o.aggregate_type, o.aggregate_id, o.aggregate_version, o.event_name,
	o.event_version, o.payload, o.headers, o.occurred_at, o.attempts, o.shard_key`
	eligible := func(shards string) string {
		return `o.status = 'pending'` + shards + `
	AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= now())
	AND NOT EXISTS (
		SELECT 1 FROM ` + t + ` b
		WHERE b.aggregate_type = o.aggregate_type AND b.aggregate_id = o.aggregate_id AND b.seq < o.seq
			AND (b.status = 'failed' OR (b.status = 'pending' AND b.next_attempt_at > now())))`
	}
	// Of some shards: $n the number of shards, $n+1 the led ones, $n+2
	// and $n+3 a range of their shard orders (shardorder.go; a lane,
	// lanes.go), checked in the pending index, so that the walk reads
	// from the table only rows in that range. The planner cannot
	// estimate the share of rows the led shards hold (it guesses 0.5%,
	// less than a batch, and would sort every pending row instead of
	// walking the pending index in sequence order until the batch is
	// full); the lock connection plans without sorts (leadPlannerSQL),
	// so it walks the index.
	order := shardOrderSQL("o.shard_key")
	shardsFilter := func(n int) string {
		return fmt.Sprintf(`
	AND %s BETWEEN $%d AND $%d
	AND o.shard_key %% $%d = ANY($%d::int4[])`, order, n+2, n+3, n, n+1)
	}
	fetch := func(shards string) string {
		return `SELECT ` + columns + `
FROM ` + t + ` o
WHERE ` + eligible(shards) + `
ORDER BY o.seq
LIMIT $1`
	}
	// Beside batches in flight ($2..$3), of a session leading every
	// shard: the first $1 eligible rows before and after them (two scans
	// of the pending index, merged in sequence order, that skip the rows
	// in flight). Fetch leaves out those of an aggregate with a pending
	// row among them (window.go).
	besidePart := func(side string) string {
		return `(SELECT ` + columns + `
		FROM ` + t + ` o
		WHERE o.seq ` + side + ` AND ` + eligible("") + `
		ORDER BY o.seq)`
	}
	r.fetchBesideSQL = `SELECT * FROM (
	` + besidePart("< $2") + `
	UNION ALL
	` + besidePart("> $3") + `
) u
ORDER BY seq
LIMIT $1`
	// The statements below read the pending rows of a few ranges of
	// sequence numbers. Each range is read from an index by its bounds,
	// in a subquery of its own (LATERAL ... OFFSET 0, which the planner
	// cannot fold into a join): joined to the ranges, the outbox would
	// be read whole, once, whenever the planner takes it for small (an
	// outbox planned while empty, or filled faster than autovacuum
	// analyzes it, looks like four pending rows), and a plan made then
	// is kept by the lock connection's prepared statements.
	inRanges := func(ranges, cols, extra string) string {
		return ranges + `,
	LATERAL (SELECT ` + cols + ` FROM ` + t + ` o
		WHERE o.status = 'pending' AND o.seq BETWEEN r.lo AND r.hi` + extra + `
		OFFSET 0) i`
	}
	// The aggregates of the pending rows in the ranges $1[i]..$2[i] of
	// the batches in flight that the Lead session did not hand out.
	r.windowSQL = `SELECT i.shard_key, i.aggregate_type, i.aggregate_id
FROM ` + inRanges(`unnest($1::bigint[], $2::bigint[]) AS r(lo, hi)`, `o.shard_key, o.aggregate_type, o.aggregate_id`, ``)
	r.fetchSQL = fetch("")
	r.fetchShardsSQL = fetch(shardsFilter(2))
	// The rows published, as spans of sequence numbers (seqSpans): for
	// each span $1[i]..$2[i], the pending rows whose bit is set in $3[i]
	// (all of them when it is NULL), read from the pending index across
	// the span, where the rows of other shards than theirs ($4[i]..$5[i],
	// the marked rows' shard orders) are skipped. The shard orders are
	// the spans' too, not parameters of their own: the planner, which
	// cannot tell how many rows a range of shard orders holds (it guesses
	// 0.5%), would otherwise read every row in it once (measured: 50,000
	// rows read for a mark of 2,000). The rows found are then marked by
	// their tuple IDs (a TID scan, no second index walk). A row changed
	// by another transaction meanwhile has a new tuple ID and is left
	// alone; but only this relay's lock connection changes the pending
	// rows of its shards.
	marked := `m.ctid = ANY (ARRAY (
	SELECT i.ctid FROM ` + inRanges(`unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::int4[], $5::int4[]) AS r(lo, hi, bits, olo, ohi)`,
		`o.ctid, o.seq`, ` AND `+order+` BETWEEN r.olo AND r.ohi`) + `
	WHERE r.bits IS NULL OR get_bit(r.bits, (i.seq - r.lo)::int) = 1))`
	if o.cfg.Retention == 0 {
		r.publishedSQL = `DELETE FROM ` + t + ` m WHERE ` + marked
	} else {
		r.publishedSQL = `UPDATE ` + t + ` m SET status = 'published', published_at = now(), next_attempt_at = NULL
WHERE ` + marked
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

// acquirer is what the relay's leader needs of the DB: connections of
// its own for the advisory locks (with the claims and marks) and LISTEN.
type acquirer interface {
	Acquire(ctx context.Context) (*pgxpool.Conn, error)
}

// Lead implements [outbox.Source]: it takes a fair share of the outbox's
// shards (see [OutboxConfig].Shards), a session-level advisory lock per
// shard on a connection of its own (across processes, one relay per
// shard), LISTENs for the outbox's notifications on another, and calls fn
// while it leads at least one shard. Fetch, MarkPublished and
// MarkAttempts run on the lock connection, and only for the shards led:
// once that session is gone they fail (fencing), and fn's context ends.
// While fn runs, the relay rebalances every LeaderPollInterval and when
// another relay tells it (it joined, handed shards over or stopped): it
// takes shards that other relays left and hands over those above its
// share when relays join. The DB must be a *pgxpool.Pool (or have its Acquire
// method). One Outbox leads one session at a time: several relays in one
// process need an Outbox each.
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
	select {
	case o.leading <- struct{}{}:
		defer func() { <-o.leading }()
	case <-ctx.Done():
		return nil
	}
	conns := make([]*pgx.Conn, 0, 2)
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, c := range conns {
			_ = c.Close(cctx) // ends the session: releases the locks, stops LISTEN
		}
	}()
	hijack := func(what string) (*pgx.Conn, error) {
		pc, err := pool.Acquire(ctx)
		if err != nil {
			return nil, fmt.Errorf("postgres: outbox relay %s connection: %w", what, err)
		}
		c := pc.Hijack()
		conns = append(conns, c)
		return c, nil
	}
	lockConn, err := hijack("lock")
	var listenConn *pgx.Conn
	if err == nil {
		listenConn, err = hijack("listen")
	}
	if err == nil {
		// Listening before it joins, a relay hears the others from the
		// start (rebalanceNotice), while it waits for shards too.
		if _, err = listenConn.Exec(ctx, `LISTEN `+pgx.Identifier{r.channel}.Sanitize()); err != nil {
			err = fmt.Errorf("postgres: outbox listen: %w", err)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s := newLeadSession(o, r, lockConn)
	defer s.leave()
	lctx, cancel := context.WithCancelCause(ctx)
	var wg sync.WaitGroup
	defer func() { // before the connections close
		cancel(nil)
		wg.Wait()
	}()
	wg.Go(func() {
		for {
			n, err := listenConn.WaitForNotification(lctx)
			if err != nil {
				if lctx.Err() == nil {
					cancel(fmt.Errorf("postgres: outbox listen connection lost: %w", err))
				}
				return
			}
			ch := s.wake // the outbox's writers: rows to read
			if n.Payload == rebalanceNotice {
				ch = s.poke
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	if err := s.join(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("postgres: outbox relay: join: %w", err)
	}
	for {
		if _, err := s.rebalance(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("postgres: outbox leader lock: %w", err)
		}
		if s.count > 0 {
			break
		}
		t := time.NewTimer(o.cfg.LeaderPollInterval)
		select {
		case <-lctx.Done():
			t.Stop()
			if ctx.Err() != nil {
				return nil
			}
			return context.Cause(lctx)
		case <-t.C:
		case <-s.poke:
			t.Stop()
		}
	}
	o.log.Info("postgres: outbox relay is the leader", "table", r.qtable, "shards", s.shards())

	s.mu.Lock()
	s.onLost = func(err error) { cancel(err) }
	s.mu.Unlock()
	wake := s.wake // the listener, the rebalancer and the Outbox's writers wake fn
	o.sess.Store(s)
	defer o.sess.Store(nil)
	wg.Go(func() {
		t := time.NewTicker(o.cfg.LeaderPollInterval)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			case <-s.poke: // a relay joined or handed shards over
			}
			// Not cut short by the end of lctx: a statement cancelled
			// midway closes the lock connection, and a batch in flight
			// at shutdown still marks its rows on it.
			changed, err := s.rebalance(context.WithoutCancel(lctx))
			if err != nil {
				if lctx.Err() == nil && errors.Is(err, ErrNotLeader) {
					cancel(err)
				}
				if lctx.Err() != nil {
					return
				}
				o.log.Warn("postgres: outbox relay rebalance failed", "table", r.qtable, "error", err)
				continue
			}
			if changed {
				select {
				case wake <- struct{}{}: // new shards may have rows waiting
				default:
				}
			}
		}
	})
	if o.cfg.Retention > 0 {
		wg.Go(func() { o.cleanup(lctx, s) })
	}
	err = fn(lctx, wake)
	lost := context.Cause(lctx)
	cancel(nil)
	wg.Wait()
	s.end()
	if err == nil && ctx.Err() == nil && lost != nil {
		err = lost
	}
	return err
}

// cleanup deletes published rows older than Retention every
// CleanupInterval until ctx ends, while s leads shard 0 (one relay
// cleans up).
func (o *Outbox) cleanup(ctx context.Context, s *leadSession) {
	t := time.NewTicker(o.cfg.CleanupInterval)
	defer t.Stop()
	for {
		if !s.leads(0) {
			// another relay cleans up
		} else if _, err := o.DeletePublished(ctx, o.cfg.Retention); err != nil && ctx.Err() == nil {
			o.log.Warn("postgres: outbox cleanup failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Fetch implements [outbox.Source]: it claims rows of the shards this
// Outbox's Lead session leads, on its lock connection (see [Outbox.Lead]).
// Outside Lead, and once the lock session is gone, it fails with
// [ErrNotLeader].
//
// A session that leads every shard reads beside batches in flight the
// first limit eligible rows outside inFlight, and leaves out those of an
// aggregate with a pending row in inFlight (an aggregate's rows in flight
// come before its other pending ones, which they block), so that it
// returns fewer than limit when rows are held back. The aggregates of the
// rows in inFlight that this session handed out and has not marked are
// known to it; the database reads only the rest of inFlight's rows
// (window.go).
//
// A session that leads some of the shards skips the others' rows in the
// pending index (shardorder.go), and reads its shards by lanes, parts of
// their shard orders that share no aggregate (lanes.go): beside batches
// in flight, the first limit eligible rows of a lane with no row in
// flight (none while every lane has some), which may lie between the
// rows in flight, as no aggregate of that lane has a row among them.
func (o *Outbox) Fetch(ctx context.Context, limit int, inFlight outbox.SeqRange) ([]outbox.Pending, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return nil, err
	}
	s, err := o.session("Fetch")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []outbox.Pending
	err = s.do(ctx, func(ctx context.Context, c *pgx.Conn) error {
		var err error
		out, err = o.fetch(ctx, c, r, s, limit, inFlight)
		return err
	})
	return out, err
}

// fetch runs Fetch's statements on c, the lock connection of s (s.mu
// held), and records the rows it returns as in flight.
func (o *Outbox) fetch(ctx context.Context, c *pgx.Conn, r *resolvedOutbox, s *leadSession, limit int, inFlight outbox.SeqRange) ([]outbox.Pending, error) {
	shards, all := s.claimable()
	beside := !inFlight.Empty()
	var lanes []orderRange // of some shards: the lanes to read, in turn (lanes.go)
	if !all {
		if lanes = s.lanesToRead(shards, beside); len(lanes) == 0 {
			return nil, nil // every lane has rows in flight
		}
	}
	b := &pgx.Batch{}
	b.Queue(r.promoteSQL) // due deadlines become pending (deadline.go)
	window := beside && all
	if window {
		s.planWindow(inFlight)
		if len(s.window.los) > 0 {
			b.Queue(r.windowSQL, s.window.los, s.window.his)
		}
	}
	switch {
	case !all:
		b.Queue(r.fetchShardsSQL, limit, int32(s.n), shards, lanes[0].lo, lanes[0].hi)
	case beside:
		b.Queue(r.fetchBesideSQL, limit, inFlight.From, inFlight.To)
	default:
		b.Queue(r.fetchSQL, limit)
	}
	out, shardKeys, err := o.readFetch(c.SendBatch(ctx, b), s, limit, true, window)
	if err != nil {
		return nil, err
	}
	// An alone fetch reads the next lane when the first is short: its
	// rows would otherwise wait for a wake.
	for _, l := range lanes[min(1, len(lanes)):] {
		if len(out) >= limit {
			break
		}
		b := &pgx.Batch{}
		b.Queue(r.fetchShardsSQL, limit-len(out), int32(s.n), shards, l.lo, l.hi)
		more, keys, err := o.readFetch(c.SendBatch(ctx, b), s, limit-len(out), false, false)
		if err != nil {
			return nil, err
		}
		out, shardKeys = mergeBySeq(out, shardKeys, more, keys)
	}
	s.fetched = len(out)
	if window {
		out, shardKeys = s.window.leaveOutHeld(out, shardKeys)
	}
	for i := range out {
		s.handOut(&out[i], shardKeys[i])
	}
	return out, nil
}

// mergeBySeq merges two fetches' rows (and their shard keys), each in
// sequence order, into one list in sequence order.
func mergeBySeq(a []outbox.Pending, aKeys []int32, b []outbox.Pending, bKeys []int32) ([]outbox.Pending, []int32) {
	if len(b) == 0 {
		return a, aKeys
	}
	out, keys := make([]outbox.Pending, 0, len(a)+len(b)), make([]int32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		if j == len(b) || i < len(a) && a[i].Seq < b[j].Seq {
			out, keys = append(out, a[i]), append(keys, aKeys[i])
			i++
		} else {
			out, keys = append(out, b[j]), append(keys, bKeys[j])
			j++
		}
	}
	return out, keys
}

// readFetch reads the results of a fetch's batch br: the promoted
// deadlines if promote, the window's aggregates if window, and then up
// to limit rows.
func (o *Outbox) readFetch(br pgx.BatchResults, s *leadSession, limit int, promote, window bool) ([]outbox.Pending, []int32, error) {
	defer br.Close()
	if promote {
		if err := o.readPromoted(br); err != nil {
			return nil, nil, err
		}
	}
	if window && len(s.window.los) > 0 {
		if err := readWindow(br, &s.window); err != nil {
			return nil, nil, err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: outbox: fetch pending events: %w", err)
	}
	defer rows.Close()
	// Room for as many rows as the last fetch returned: a backlog's
	// batches are allocated once, not grown (and copied) four times; a
	// trickle's stay small.
	out, shardKeys, err := readPending(rows, min(limit, max(256, s.fetched)))
	if err != nil {
		return nil, nil, err
	}
	rows.Close()
	if err := br.Close(); err != nil {
		return nil, nil, fmt.Errorf("postgres: outbox: fetch pending events: %w", err)
	}
	return out, shardKeys, nil
}

// readWindow reads the windowSQL's rows into w's held aggregates.
func readWindow(br pgx.BatchResults, w *windowScratch) error {
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("postgres: outbox: read the rows beside the batches in flight: %w", err)
	}
	var (
		key     int32
		typ, id string
	)
	_, err = pgx.ForEachRow(rows, []any{&key, &typ, &id}, func() error {
		w.hold(key, aggstore.Key{Type: typ, ID: id})
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: outbox: read the rows beside the batches in flight: %w", err)
	}
	return nil
}

// MarkPublished implements [outbox.Source], on the lock connection of
// the Lead session that fetched the rows; otherwise it fails with
// [ErrNotLeader].
func (o *Outbox) MarkPublished(ctx context.Context, seqs []int64) error {
	r, err := o.resolve(ctx)
	if err != nil {
		return err
	}
	return o.mark(ctx, "MarkPublished", seqs, func(ctx context.Context, c *pgx.Conn, s *leadSession) error {
		// A span skips up to about 3 rows of the marked rows' shards per
		// row it names (about what an index descent for a new span
		// costs): of the numbers it skips, the share (hi-lo+1)/4096 are
		// in their range of shard orders.
		lo, hi := s.orderRange(seqs)
		los, his, bits := seqSpans(seqs, int64(3<<shardOrderBits/(hi-lo+1)))
		olos, ohis := make([]int32, len(los)), make([]int32, len(los))
		for i := range los {
			olos[i], ohis[i] = lo, hi
		}
		if _, err := c.Exec(ctx, r.publishedSQL, los, his, bits, olos, ohis); err != nil {
			return fmt.Errorf("postgres: outbox: mark %d events published: %w", len(seqs), err)
		}
		return nil
	})
}

// mark runs fn, a mark of the rows seqs, on the lock connection of the
// Lead session that fetched them.
func (o *Outbox) mark(ctx context.Context, what string, seqs []int64, fn func(ctx context.Context, c *pgx.Conn, s *leadSession) error) error {
	s, err := o.session(what)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost != nil {
		return s.lost
	}
	if err := s.owns(seqs); err != nil {
		return err
	}
	err = s.do(ctx, func(ctx context.Context, c *pgx.Conn) error { return fn(ctx, c, s) })
	if err != nil {
		return err
	}
	return s.settle(ctx, seqs)
}

// MarkAttempts implements [outbox.Source], on the lock connection of the
// Lead session that fetched the rows; otherwise it fails with
// [ErrNotLeader].
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
	return o.mark(ctx, "MarkAttempts", seqs, func(ctx context.Context, c *pgx.Conn, _ *leadSession) error {
		if _, err := c.Exec(ctx, r.attemptsSQL, seqs, counts, errs, finals, delays); err != nil {
			return fmt.Errorf("postgres: outbox: record %d failed attempts: %w", len(as), err)
		}
		return nil
	})
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
	occurred_at, status, attempts, coalesce(last_error, ''), created_at, next_attempt_at, published_at, due_at, coalesce(schedule_key, ''),
	coalesce(discarded_by, ''), coalesce(discard_reason, ''), discarded_at`

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
			due, disc  *time.Time
		)
		if err := rows.Scan(&r.Seq, &r.Event.ID, &r.Event.AggregateType, &r.Event.AggregateID, &r.Event.Version,
			&r.Event.Name, &r.EventVersion, &r.RawPayload, &headers, &r.Event.OccurredAt, &status, &r.Attempts, &r.LastError,
			&r.CreatedAt, &next, &publ, &due, &r.ScheduleKey, &r.DiscardedBy, &r.DiscardReason, &disc); err != nil {
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
		if disc != nil {
			r.DiscardedAt = *disc
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
