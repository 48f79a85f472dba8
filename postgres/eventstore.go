package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/repository"
)

// EventStore is the PostgreSQL adapter of [repository.Repository] for
// event-sourced aggregates: an aggregate is the sequence of its events,
// stored one row each in the events table (type, ID, version, event ID,
// name, schema version, payload, metadata, occurred-at). Load replays
// them (upcasting old payloads through the registry); Save appends the
// new ones and writes them to the [Outbox] in the same transaction, with
// optimistic concurrency on the version, in one round trip (one batch).
// Its unit-of-work rules are those of [Repository]. A version conflict
// fails the events' insert, so in a unit of work it leaves the unit's
// transaction aborted (it rolls back anyway) and the conflict's Actual
// version unknown (-1).
//
// The payloads are encoded and decoded by the event registry of the
// Outbox, the one registry of the service: an event type is registered
// once, for the store, the outbox and the consumers.
//
// Every event also gets a global position, read by [EventStream]. Save
// takes the append lock of the events table (a transaction-level
// advisory lock) before its rows take their positions, and the lock is
// held until the transaction ends: transactions that append events
// commit one at a time, which is what lets stream readers never skip an
// event (see [EventStream]). Keep such transactions short.
//
// With a [repository.SnapshotMapping] in the mapping, a save that takes
// an aggregate across a multiple of Snapshot.Every events also stores a
// snapshot of it, in the same transaction (so a snapshot never describes
// events that did not commit; a Take error fails the save), replacing
// the aggregate's previous snapshot of that schema version. Load starts
// from the snapshot of the mapping's Snapshot.Version and replays the
// events after it; when there is none, or Restore fails, or the events
// do not follow on from it, it replays every event.
type EventStore[A aggregate.Aggregate] struct {
	db      DB
	outbox  *Outbox
	mapping repository.EventMapping[A]
	retry   aggstore.Retry
	options []aggregate.Option

	sqlLoad, sqlLoadAfter, sqlAppend, sqlVersion string
	sqlSnapshot, sqlPutSnapshot                  string
}

// NewEventStore returns the event store of mapping.Type in db. Its events
// go into ob, whose [Tables] also name the events table (create it with
// [Migrate]) and whose registry encodes them.
func NewEventStore[A aggregate.Aggregate](db DB, ob *Outbox, mapping repository.EventMapping[A], cfg *RepositoryConfig) (*EventStore[A], error) {
	if cfg == nil {
		cfg = &RepositoryConfig{}
	}
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("postgres: NewEventStore: nil DB"))
	}
	if ob == nil {
		errs = append(errs, errors.New("postgres: NewEventStore: nil Outbox"))
	}
	errs = append(errs, mapping.Validate())
	retry, err := aggstore.NewRetry(cfg.Retry, "RepositoryConfig.Retry")
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	events, snapshots := ob.n.q(ob.n.t.Events), ob.n.q(ob.n.t.Snapshots)
	return &EventStore[A]{
		db:      db,
		outbox:  ob,
		mapping: mapping,
		retry:   retry,
		options: slices.Clone(cfg.Options),
		sqlLoad: `SELECT version, event_id, name, event_version, payload, metadata, occurred_at FROM ` + events +
			` WHERE type = $1 AND id = $2 ORDER BY version`,
		sqlLoadAfter: `SELECT version, event_id, name, event_version, payload, metadata, occurred_at FROM ` + events +
			` WHERE type = $1 AND id = $2 AND version > $3 ORDER BY version`,
		// The append lock (a transaction-level advisory lock on the events
		// table) is taken before the rows take their positions and held
		// until the transaction ends: positions are handed out in commit
		// order, which is what lets the stream's readers never skip an
		// event (see EventStream).
		sqlAppend: `WITH append_lock AS MATERIALIZED (SELECT ` + appendLockSQL(ob.n) + `)
INSERT INTO ` + events + ` (type, id, version, event_id, name, event_version, payload, metadata, occurred_at)
SELECT $1, $2, v, e, n, ev, p::jsonb, m::jsonb, o
FROM append_lock, unnest($3::bigint[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::timestamptz[]) AS u(v, e, n, ev, p, m, o)
ORDER BY v`,
		sqlVersion:  `SELECT coalesce(max(version), 0) FROM ` + events + ` WHERE type = $1 AND id = $2`,
		sqlSnapshot: `SELECT version, state FROM ` + snapshots + ` WHERE type = $1 AND id = $2 AND schema_version = $3`,
		sqlPutSnapshot: `INSERT INTO ` + snapshots + ` (type, id, schema_version, version, state) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (type, id, schema_version) DO UPDATE SET version = excluded.version, state = excluded.state, taken_at = now()
WHERE ` + snapshots + `.version < excluded.version`,
	}, nil
}

// storedMetadata is the JSON form of aggregate.Metadata in the metadata
// column.
type storedMetadata struct {
	CorrelationID string            `json:"correlation_id,omitempty"`
	CausationID   string            `json:"causation_id,omitempty"`
	TraceParent   string            `json:"traceparent,omitempty"`
	TraceState    string            `json:"tracestate,omitempty"`
	Values        map[string]string `json:"values,omitempty"`
}

// Load replays the aggregate's events (in the unit of work of ctx, when
// there is one), from its newest usable snapshot when the mapping has a
// Snapshot. No events give an error wrapping [aggregate.ErrNotFound].
func (s *EventStore[A]) Load(ctx context.Context, id string) (A, error) {
	return s.load(ctx, querier(ctx, s.db), id, false)
}

func (s *EventStore[A]) load(ctx context.Context, q DB, id string, _ bool) (A, error) {
	var zero A
	opts := aggstore.LoadOptions(ctx, s.options)
	if snap := s.mapping.Snapshot; snap != nil {
		a, ok, err := s.loadFromSnapshot(ctx, q, id, snap, opts)
		if err != nil || ok {
			return a, err
		}
	}
	history, err := s.history(ctx, q, id, 0)
	if err != nil {
		return zero, err
	}
	if len(history) == 0 {
		return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, aggregate.ErrNotFound)
	}
	return aggstore.Rebuild(s.mapping.Type, id, "EventMapping.New", s.mapping.New(id), 0, history, opts)
}

// loadFromSnapshot loads the aggregate from its snapshot of the mapping's
// schema version and the events after it. ok is false, without an
// error, when there is no such snapshot or it cannot be restored: the
// caller then replays every event.
func (s *EventStore[A]) loadFromSnapshot(ctx context.Context, q DB, id string, snap *repository.SnapshotMapping[A], opts []aggregate.Option) (a A, ok bool, err error) {
	var (
		version int64
		state   []byte
	)
	switch err := q.QueryRow(ctx, s.sqlSnapshot, s.mapping.Type, id, snap.Version).Scan(&version, &state); {
	case errors.Is(err, pgx.ErrNoRows):
		return a, false, nil
	case err != nil:
		return a, false, fmt.Errorf("repository: load %s %s: read snapshot: %w", s.mapping.Type, id, err)
	}
	history, err := s.history(ctx, q, id, version)
	if err != nil {
		return a, false, err
	}
	a, ok = s.restore(id, snap, version, state, history, opts)
	return a, ok, nil
}

// restore builds the aggregate from a snapshot and the events after it.
// A snapshot that Restore refuses, or that the events do not follow on
// from, gives ok false: it is ignored.
func (s *EventStore[A]) restore(id string, snap *repository.SnapshotMapping[A], version int64, state []byte, history []aggregate.Envelope, opts []aggregate.Option) (a A, ok bool) {
	restored, err := snap.Restore(id, state)
	if err == nil {
		a, err = aggstore.Rebuild(s.mapping.Type, id, "EventMapping.Snapshot.Restore", restored, version, history, opts)
	}
	return a, err == nil
}

// history reads the aggregate's events after version after.
func (s *EventStore[A]) history(ctx context.Context, q DB, id string, after int64) ([]aggregate.Envelope, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if after == 0 {
		rows, err = q.Query(ctx, s.sqlLoad, s.mapping.Type, id)
	} else {
		rows, err = q.Query(ctx, s.sqlLoadAfter, s.mapping.Type, id, after)
	}
	if err != nil {
		return nil, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
	}
	defer rows.Close()
	var history []aggregate.Envelope
	for rows.Next() {
		var (
			env           aggregate.Envelope
			schemaVersion int
			payload       []byte
			metadata      []byte
		)
		if err := rows.Scan(&env.Version, &env.ID, &env.Name, &schemaVersion, &payload, &metadata, &env.OccurredAt); err != nil {
			return nil, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
		}
		env.AggregateType, env.AggregateID = s.mapping.Type, id
		if err := decodeEvent(s.outbox.reg, &env, schemaVersion, payload, metadata); err != nil {
			return nil, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
		}
		history = append(history, env)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
	}
	return history, nil
}

// decodeEvent decodes the payload (upcast to the version its Go type has
// today) and the metadata of an event row into env, whose Name and
// Version are set: what the store's loads and the stream share.
func decodeEvent(reg *eventbus.Registry, env *aggregate.Envelope, schemaVersion int, payload, metadata []byte) error {
	var err error
	if env.Payload, err = reg.DecodePayload(env.Name, schemaVersion, payload); err != nil {
		return fmt.Errorf("event %s (version %d): %w", env.Name, env.Version, err)
	}
	if len(metadata) > 0 {
		var md storedMetadata
		if err := json.Unmarshal(metadata, &md); err != nil {
			return fmt.Errorf("decode metadata of version %d: %w", env.Version, err)
		}
		env.Metadata = aggregate.Metadata(md)
	}
	return nil
}

// appendLockSQL is the expression that takes the append lock of the
// events table: a transaction-level advisory lock whose key is derived
// from the table's OID, so that it is one lock per table whatever the
// search_path.
func appendLockSQL(n names) string {
	return `pg_advisory_xact_lock(` + strconv.FormatInt(lockKey("events/append", "", ""), 10) + ` # ` +
		quoteLiteral(n.q(n.t.Events)) + `::regclass::oid::bigint)`
}

// Save appends a's uncommitted events; see [repository.Repository].Save
// for the errors.
func (s *EventStore[A]) Save(ctx context.Context, a A) error {
	return save(ctx, s.db, s.mapping.Type, a, s.write)
}

// Update loads the aggregate, runs fn on it and saves it; see
// [repository.Repository].Update and [RepositoryConfig].Retry.
func (s *EventStore[A]) Update(ctx context.Context, id string, fn func(A) error) error {
	return update(ctx, s.db, s.retry, false, s.mapping.Type, id, fn, s.load, s.write)
}

// write appends the events with one batch: the outbox rows, the
// snapshot when one is due, and the events, sent together. A version
// already taken fails the events' insert with a unique violation, which
// rolls back the batch's implicit transaction (or aborts the unit's).
func (s *EventStore[A]) write(ctx context.Context, q DB, inTx bool, root *aggregate.Root, a A, base int64) error {
	typ, id := s.mapping.Type, root.ID()
	events := aggstore.PendingEvents(ctx, root)[base-root.CommittedVersion():]
	rows, err := s.outbox.encode(events)
	if err != nil {
		return fmt.Errorf("repository: save %s %s: %w", typ, id, err)
	}
	n := len(rows)
	var (
		versions   = make([]int64, n)
		ids        = make([]string, n)
		names      = make([]string, n)
		evVersions = make([]int32, n)
		payloads   = make([]string, n)
		metas      = make([]*string, n)
		times      = make([]time.Time, n)
	)
	for i, r := range rows {
		e := r.Event
		versions[i], ids[i], names[i], payloads[i], times[i] = e.Version, e.ID, e.Name, string(r.Payload), e.OccurredAt
		evVersions[i] = int32(min(r.SchemaVersion, 1<<30))
		if !e.Metadata.IsZero() {
			md, err := json.Marshal(storedMetadata(e.Metadata))
			if err != nil {
				return fmt.Errorf("repository: save %s %s: encode metadata: %w", typ, id, err)
			}
			m := string(md)
			metas[i] = &m
		}
	}
	// The outbox rows and the snapshot first, the events last: the
	// events' insert takes the append lock, held until the transaction
	// ends, so the less follows it, the less other writers wait.
	b := &pgx.Batch{}
	notifyAfter := notifiesAfterCommit(ctx, q, inTx)
	if notifyAfter {
		// On its own on a pool, or in a unit of work on one: the triggers
		// skip the transaction, and the readers are notified after it
		// commits.
		b.Queue(setNotifyAfterCommit)
	}
	obSQL, obArgs, err := s.outbox.insert(rows)
	if err != nil {
		return fmt.Errorf("repository: save %s %s: write events to outbox: %w", typ, id, err)
	}
	b.Queue(obSQL, obArgs...)
	if snap := s.mapping.Snapshot; snap != nil && base/int64(snap.Every) < root.Version()/int64(snap.Every) {
		state, err := snap.Take(a)
		if err != nil {
			return fmt.Errorf("repository: save %s %s: take snapshot: %w", typ, id, err)
		}
		b.Queue(s.sqlPutSnapshot, typ, id, snap.Version, root.Version(), state)
	}
	b.Queue(s.sqlAppend, typ, id, versions, ids, names, evVersions, payloads, metas, times)
	s.outbox.notifyInUnit(ctx, true)
	// failed is the save's error for err, a statement's error; readable
	// is false in an aborted transaction.
	failed := func(err error, readable bool) error {
		var pgErr *pgconn.PgError
		switch {
		case !errors.As(err, &pgErr) || pgErr.Code != "23505" || pgErr.TableName != s.outbox.n.t.Events ||
			pgErr.ConstraintName == s.outbox.n.t.Events+"_event_id_key":
			return fmt.Errorf("repository: save %s %s: %w", typ, id, err)
		case base == 0:
			return &aggregate.AlreadyExistsError{Type: typ, ID: id}
		}
		// Outside a transaction the failed batch has rolled back and q can
		// read the version that won; an aborted transaction cannot.
		actual := int64(-1)
		if readable {
			if err := q.QueryRow(ctx, s.sqlVersion, typ, id).Scan(&actual); err != nil {
				actual = -1
			}
		}
		return &aggregate.ConflictError{Type: typ, ID: id, Expected: base, Actual: actual}
	}
	if held := holding(q); held != nil && notifyAfter {
		// In a unit of work on a pool: the statements go out with the
		// unit's next statement or its COMMIT.
		held.laterBatch(b, func(_ int, err error) error { return failed(err, false) })
		return nil
	}
	if err = q.SendBatch(ctx, b).Close(); err != nil {
		return failed(err, !inTx)
	}
	if notifyAfter && !inTx {
		s.outbox.notifyCommitted(q, true)
	}
	return nil
}

var _ repository.Repository[aggregate.Aggregate] = (*EventStore[aggregate.Aggregate])(nil)
