package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/check"
	"github.com/dddkit/dddkit/repository"
)

// DefaultStreamMaxWait is how long [EventStream.Wait] waits for a
// notification at most.
const DefaultStreamMaxWait = 30 * time.Second

// EventStreamConfig configures an [EventStream]. The zero value (or nil)
// is usable.
type EventStreamConfig struct {
	// Tables names the tables; Tables.Events is the stream's table. Give
	// the EventStream the Tables of the [Outbox] the event stores use.
	Tables Tables
	// MaxWait bounds how long Wait waits for a notification before it
	// returns anyway (default 30s), so that a reader re-reads even if a
	// notification was lost (a dropped listener connection).
	MaxWait time.Duration
	// Logger receives the listener's connection failures; nil discards
	// them.
	Logger *slog.Logger
}

// Validate reports every problem of the configuration at once.
func (c *EventStreamConfig) Validate() error {
	if c == nil {
		return nil
	}
	e := check.New("postgres: EventStreamConfig")
	e.Add(c.Tables.Validate())
	check.NotNegative(e, "MaxWait", c.MaxWait)
	return e.Err()
}

// EventStream is the [repository.Stream] of the events table: every event
// that the [EventStore]s of a database saved, in one global order, with
// payloads decoded (and upcast) by the service's event registry.
//
// # Positions and late commits
//
// Each event row gets its position from a sequence when it is inserted,
// but becomes visible when its transaction commits, so positions alone
// could be seen out of order: writer A takes position 10, writer B takes
// 11 and commits first; a reader that read 11 and continued after it
// would never see 10. dddkit prevents that on the write side: an
// EventStore takes a transaction-level advisory lock on the events table
// (the append lock) before its rows take their positions, and holds it
// until its transaction ends. Positions are therefore handed out in
// commit order: when a reader can see position p, every smaller position
// is committed (or was rolled back and is a gap forever). Read, Head and
// Wait are plain queries with no gap detection and no waiting on other
// transactions.
//
// The price is that transactions appending events commit one at a time:
// a second writer waits, from its insert until the first one's commit.
// Keep units of work that save event-sourced aggregates short; save the
// event-sourced aggregates last in them, which also keeps the lock from
// joining a deadlock cycle with row locks (PostgreSQL resolves such
// cycles by failing one transaction, which Update retries as a
// concurrency conflict).
//
// The alternatives, and why not them: (1) recording each row's
// transaction ID (pg_current_xact_id) and reading only rows whose
// transaction is older than the oldest running one
// (pg_snapshot_xmin(pg_current_snapshot())) keeps writers parallel, but
// is only safe when transaction IDs are taken in position order, which
// they are not: a transaction that wrote anything earlier (a state-stored
// aggregate, an inbox row) holds an older ID than one that began later
// and inserted its events first, so a reader can see the later position
// while the earlier one is still uncommitted (the test
// TestEventStreamOlderTransactionInsertsLater plays this sequence, and
// fails without the append lock); it also stalls every reader behind the
// oldest open transaction of the whole database. Ordering by (transaction ID,
// position) fixes the first problem but gives a two-part checkpoint
// instead of one position. (2) Marten's high-water mark waits for a gap
// in the positions to fill and skips it after a timeout: a transaction
// slower than the timeout loses its events for the reader. The append
// lock is simple, exact, and costs nothing on the read side.
//
// # Waiting
//
// A trigger NOTIFYs a channel named after the events table when a
// statement inserts into it; PostgreSQL delivers the notification at
// commit (a [UnitOfWork] on a pool sends it itself, right after its
// commit). The first Wait starts one listener: a connection of its own
// from the pool (the DB must be a *pgxpool.Pool; with another DB, Wait
// sleeps MaxWait instead) that LISTENs and wakes every waiting reader.
// Wait subscribes before it checks the head, so a commit between a
// reader's Read and its Wait is never missed. [EventStream.Close] ends
// the listener and releases its connection.
type EventStream struct {
	db      DB
	reg     *eventbus.Registry
	n       names
	maxWait time.Duration
	log     *slog.Logger

	sqlRead, sqlHead string

	mu       sync.Mutex
	resolved string        // the NOTIFY channel, once the table is found
	wake     chan struct{} // closed by the listener on a notification
	cancel   context.CancelFunc
	done     chan struct{} // closed when the listener has stopped
	closed   bool
}

// NewEventStream returns the stream of the events table of cfg.Tables in
// db. reg is the service's one event registry, the one the event stores'
// [Outbox] encodes with; an event it does not know fails Read.
func NewEventStream(db DB, reg *eventbus.Registry, cfg *EventStreamConfig) (*EventStream, error) {
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("postgres: NewEventStream: nil DB"))
	}
	if reg == nil {
		errs = append(errs, errors.New("postgres: NewEventStream: nil Registry"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := EventStreamConfig{}
	if cfg != nil {
		c = *cfg
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultStreamMaxWait
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	n, err := newNames(&c.Tables)
	if err != nil {
		return nil, err
	}
	events := n.q(n.t.Events)
	return &EventStream{
		db:      db,
		reg:     reg,
		n:       n,
		maxWait: c.MaxWait,
		log:     c.Logger,
		sqlRead: `SELECT position, type, id, version, event_id, name, event_version, payload, metadata, occurred_at, recorded_at
FROM ` + events + `
WHERE position > $1 AND (cardinality($2::text[]) = 0 OR name = ANY($2)) AND (cardinality($3::text[]) = 0 OR type = ANY($3))
ORDER BY position
LIMIT $4`,
		sqlHead: `SELECT coalesce(max(position), 0) FROM ` + events,
	}, nil
}

// Read implements [repository.Stream]. It reads on the unit of work of
// ctx, when there is one.
func (s *EventStream) Read(ctx context.Context, after int64, filter repository.StreamFilter, limit int) ([]repository.StoredEvent, error) {
	if limit < 1 {
		return nil, fmt.Errorf("postgres: read event stream: limit %d is not positive", limit)
	}
	names, types := filter.EventNames, filter.AggregateTypes
	if names == nil {
		names = []string{}
	}
	if types == nil {
		types = []string{}
	}
	// Planned for each read, not prepared once: a plan made while the
	// events table was small (a new store, a burst before autovacuum
	// analyzed it) reads and sorts every event after the position instead
	// of walking the position index to the limit; a projection catching up
	// from the start would read the whole table for every batch.
	rows, err := querier(ctx, s.db).Query(ctx, s.sqlRead, pgx.QueryExecModeCacheDescribe, after, names, types, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: read event stream: %w", err)
	}
	defer rows.Close()
	out := make([]repository.StoredEvent, 0, min(limit, 1024))
	for rows.Next() {
		var (
			e             repository.StoredEvent
			env           = &e.Event
			schemaVersion int
			payload       []byte
			metadata      []byte
		)
		if err := rows.Scan(&e.Position, &env.AggregateType, &env.AggregateID, &env.Version, &env.ID, &env.Name,
			&schemaVersion, &payload, &metadata, &env.OccurredAt, &e.RecordedAt); err != nil {
			return nil, fmt.Errorf("postgres: read event stream: %w", err)
		}
		if err := decodeEvent(s.reg, env, schemaVersion, payload, metadata); err != nil {
			return nil, fmt.Errorf("postgres: read event stream: position %d (%s %s): %w", e.Position, env.AggregateType, env.AggregateID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read event stream: %w", err)
	}
	return out, nil
}

// Head implements [repository.Stream].
func (s *EventStream) Head(ctx context.Context) (int64, error) {
	var head int64
	if err := querier(ctx, s.db).QueryRow(ctx, s.sqlHead).Scan(&head); err != nil {
		return 0, fmt.Errorf("postgres: event stream head: %w", err)
	}
	return head, nil
}

// Wait implements [repository.Stream]: it returns when the head is past
// after, when a NOTIFY says that events were committed, after MaxWait,
// or with ctx's error.
func (s *EventStream) Wait(ctx context.Context, after int64) error {
	wake, err := s.subscribe(ctx)
	if err != nil {
		return err
	}
	head, err := s.Head(ctx)
	if err != nil {
		return err
	}
	if head > after {
		return nil
	}
	t := time.NewTimer(s.maxWait)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// Close stops the listener, if Wait started one, and releases its
// connection. Wait fails after Close; Read and Head still work.
func (s *EventStream) Close() {
	s.mu.Lock()
	s.closed = true
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// errStreamClosed is Wait's error after Close.
var errStreamClosed = errors.New("postgres: event stream closed")

// subscribe returns a channel that the listener closes on the next
// notification, starting the listener (and waiting until it LISTENs)
// when none runs. Without a pool, it returns a nil channel: Wait then
// sleeps MaxWait.
func (s *EventStream) subscribe(ctx context.Context) (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errStreamClosed
	}
	if s.wake != nil {
		return s.wake, nil
	}
	pool, ok := s.db.(acquirer)
	if !ok {
		return nil, nil
	}
	channel, err := s.channel(ctx)
	if err != nil {
		return nil, err
	}
	pc, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: event stream listener: %w", err)
	}
	conn := pc.Hijack()
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("postgres: event stream listen: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	wake, done := make(chan struct{}), make(chan struct{})
	s.wake, s.cancel, s.done = wake, cancel, done
	go s.listen(lctx, conn, done)
	return wake, nil
}

// listen wakes the waiters on every notification until ctx ends or the
// connection fails; then it wakes them a last time (so that they re-read)
// and leaves the next Wait to start a new listener.
func (s *EventStream) listen(ctx context.Context, conn *pgx.Conn, done chan struct{}) {
	defer close(done)
	defer closeConn(conn)
	for {
		_, err := conn.WaitForNotification(ctx)
		s.mu.Lock()
		close(s.wake)
		if err != nil {
			s.wake, s.cancel = nil, nil
		} else {
			s.wake = make(chan struct{})
		}
		s.mu.Unlock()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("postgres: event stream listener connection lost", "error", err)
			}
			return
		}
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// channel returns the NOTIFY channel of the events table (it names the
// table's schema literally), checking that the database is migrated.
// s.mu is held.
func (s *EventStream) channel(ctx context.Context) (string, error) {
	if s.resolved != "" {
		return s.resolved, nil
	}
	if err := requireVersion(ctx, s.db, &s.n.t); err != nil {
		return "", err
	}
	var schema *string
	err := s.db.QueryRow(ctx, `SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass($1)`, s.n.q(s.n.t.Events)).Scan(&schema)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && schema == nil) {
		return "", fmt.Errorf("%w: no table %s", ErrNotMigrated, s.n.q(s.n.t.Events))
	}
	if err != nil {
		return "", fmt.Errorf("postgres: event stream: find table %s: %w", s.n.t.Events, err)
	}
	s.resolved = channelName(*schema, s.n.t.Events)
	return s.resolved, nil
}

var _ repository.Stream = (*EventStream)(nil)
