package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/retry"
)

// EventMapping describes an event-sourced aggregate type to an
// [EventStore]: how to make an empty aggregate and how to turn stored
// events back into Go values. There is no state encoding; the events are
// the state.
type EventMapping[A aggregate.Aggregate] struct {
	// Type is the aggregate type, the one the aggregate passes to
	// [aggregate.Root.Init]. Required.
	Type string

	// New returns an empty aggregate, Init'ed with id and Type, with no
	// events; the store applies the history to it with
	// [aggregate.Replay]. Required.
	New func(id string) A

	// Decode turns a stored payload, the encoding/json form of the event,
	// back into the event called name. [JSONEvents] builds one from the
	// aggregate's event types. Required.
	Decode func(name string, payload []byte) (aggregate.Event, error)
}

func (m *EventMapping[A]) validate() error {
	var errs []error
	if m.Type == "" {
		errs = append(errs, errors.New("repository: EventMapping.Type is empty"))
	}
	if m.New == nil {
		errs = append(errs, errors.New("repository: EventMapping.New is nil"))
	}
	if m.Decode == nil {
		errs = append(errs, errors.New("repository: EventMapping.Decode is nil"))
	}
	return errors.Join(errs...)
}

// EventType is one event type known to [JSONEvents]; make it with
// [JSONEvent].
type EventType struct {
	name   string
	err    error
	decode func([]byte) (aggregate.Event, error)
}

// JSONEvent returns the [EventType] of E, a value type (usually a struct)
// stored as JSON, under the name E's EventName method returns.
func JSONEvent[E aggregate.Event]() (t EventType) {
	defer func() {
		if recover() != nil {
			t = EventType{err: fmt.Errorf("repository: JSONEvent[%T]: EventName panics on the zero value; use a value type", *new(E))}
		}
	}()
	var zero E
	return EventType{
		name: zero.EventName(),
		decode: func(b []byte) (aggregate.Event, error) {
			var e E
			err := json.Unmarshal(b, &e)
			return e, err
		},
	}
}

// JSONEvents returns an [EventMapping.Decode] function that knows the
// given event types. Two types with one name are an error.
func JSONEvents(types ...EventType) (func(name string, payload []byte) (aggregate.Event, error), error) {
	decoders := make(map[string]func([]byte) (aggregate.Event, error), len(types))
	var errs []error
	for _, t := range types {
		switch {
		case t.err != nil:
			errs = append(errs, t.err)
		case t.name == "":
			errs = append(errs, errors.New("repository: JSONEvents: an event type has an empty name"))
		case decoders[t.name] != nil:
			errs = append(errs, fmt.Errorf("repository: JSONEvents: two event types are named %q", t.name))
		default:
			decoders[t.name] = t.decode
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return func(name string, payload []byte) (aggregate.Event, error) {
		decode, ok := decoders[name]
		if !ok {
			return nil, fmt.Errorf("unknown event %q", name)
		}
		return decode(payload)
	}, nil
}

// EventStoreConfig configures an [*EventStore]. A nil config means the
// defaults.
type EventStoreConfig[A aggregate.Aggregate] struct {
	// Tables names the tables; they must have been created by [Migrate]
	// with the same names. Only Tables.Events is used.
	Tables Tables

	// Retry, if set, makes Update re-run its whole load → fn → save cycle
	// when the save loses a race with another writer
	// ([aggregate.ErrConcurrencyConflict]), each time with a freshly loaded
	// aggregate, so fn must act only on the aggregate it is given. Zero
	// fields of the policy mean 3 attempts, a BaseDelay of 10ms and a
	// MaxDelay of 1s. nil means Update returns the conflict at once (to
	// retry at another level, such as the cqrs retry middleware; do not
	// stack both).
	Retry *retry.Policy

	// AfterSave, if set, runs inside the saving transaction after the
	// events are written and before the commit, e.g. to update a
	// projection. An error rolls the save back and is returned wrapped.
	AfterSave func(ctx context.Context, tx pgx.Tx, a A) error

	// Options are applied, through [aggregate.Replay], to every aggregate
	// this repository loads (Load, Update and their Tx forms) once its
	// history has been replayed. Typically aggregate.WithClock(clock), so
	// that events recorded after a load are stamped by the same clock as
	// those of a new aggregate (a fake one in tests). The metadata of the
	// request's context ([aggregate.MetadataFromContext]) is applied after
	// them; fields it leaves empty are filled from an
	// [aggregate.WithMetadata] given here. nil entries are ignored.
	Options []aggregate.Option
}

// EventStore is the event-sourced adapter of [Repository] on PostgreSQL:
// an aggregate is stored as its events, one row each in the events table
// (see [Migrate]), and Load rebuilds it by applying them in order. Save
// appends the uncommitted events and writes them to the outbox, in one
// transaction. The primary key (type, id, version) is the optimistic
// concurrency check: if another writer appended since the aggregate was
// loaded, the first new version is taken, the save fails with an
// [*aggregate.ConflictError] (an [*aggregate.AlreadyExistsError] when the
// aggregate was new) and nothing is written.
//
// Load reads the whole history; there are no snapshots, so keep
// event-sourced aggregates short-lived or small (hundreds of events, not
// hundreds of thousands). The Tx forms and [Transact] work as with
// [Postgres]. An EventStore is safe for concurrent use.
type EventStore[A aggregate.Aggregate] struct {
	db        DB
	outbox    OutboxWriter
	mapping   EventMapping[A]
	retry     retryPolicy
	afterSave func(ctx context.Context, tx pgx.Tx, a A) error
	options   []aggregate.Option

	sqlLoad, sqlAppend, sqlVersion string
}

// NewEventStore returns an event-sourced repository for the aggregates
// mapping describes, storing their events through db (usually a
// *pgxpool.Pool) and writing them to the outbox through outbox (usually an
// *outbox.Store). A nil cfg means the defaults. Run [Migrate] once at
// start-up.
func NewEventStore[A aggregate.Aggregate](db DB, outbox OutboxWriter, mapping EventMapping[A], cfg *EventStoreConfig[A]) (*EventStore[A], error) {
	if cfg == nil {
		cfg = &EventStoreConfig[A]{}
	}
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("repository: NewEventStore: db is nil"))
	}
	if outbox == nil {
		errs = append(errs, errors.New("repository: NewEventStore: outbox is nil"))
	}
	errs = append(errs, mapping.validate())
	rp, err := newRetryPolicy(cfg.Retry, "EventStoreConfig.Retry")
	errs = append(errs, err)
	names, err := cfg.Tables.names()
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	events := names.events
	return &EventStore[A]{
		db:        db,
		outbox:    outbox,
		mapping:   mapping,
		retry:     rp,
		afterSave: cfg.AfterSave,
		options:   slices.Clone(cfg.Options),
		sqlLoad: `SELECT version, event_id, name, payload, metadata, occurred_at FROM ` + events +
			` WHERE type = $1 AND id = $2 ORDER BY version`,
		sqlAppend: `INSERT INTO ` + events + ` (type, id, version, event_id, name, payload, metadata, occurred_at)
SELECT $1, $2, v, e, n, p::jsonb, m::jsonb, o
FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[]) AS u(v, e, n, p, m, o)
ON CONFLICT (type, id, version) DO NOTHING`,
		// The stored version, without the rows the failing append itself
		// inserted before it found the conflict.
		sqlVersion: `SELECT coalesce(max(version), 0) FROM ` + events + ` WHERE type = $1 AND id = $2 AND event_id <> ALL($3::text[])`,
	}, nil
}

// storedMetadata is the JSON form of aggregate.Metadata in the events
// table.
type storedMetadata struct {
	CorrelationID string            `json:"correlation_id,omitempty"`
	CausationID   string            `json:"causation_id,omitempty"`
	TraceParent   string            `json:"traceparent,omitempty"`
	Values        map[string]string `json:"values,omitempty"`
}

// Load rebuilds the aggregate from its events, with
// [EventStoreConfig.Options] and the metadata of ctx applied to its root
// (see [Postgres.Load]). No events gives an error wrapping
// [aggregate.ErrNotFound].
func (s *EventStore[A]) Load(ctx context.Context, id string) (A, error) {
	return s.load(ctx, s.db, id)
}

// LoadTx is [EventStore.Load] inside the caller's transaction.
func (s *EventStore[A]) LoadTx(ctx context.Context, tx pgx.Tx, id string) (A, error) {
	return s.load(ctx, tx, id)
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *EventStore[A]) load(ctx context.Context, q querier, id string) (A, error) {
	var zero A
	rows, err := q.Query(ctx, s.sqlLoad, s.mapping.Type, id)
	if err != nil {
		return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
	}
	var history []aggregate.Envelope
	for rows.Next() {
		var (
			env      aggregate.Envelope
			payload  []byte
			metadata []byte
		)
		if err := rows.Scan(&env.Version, &env.ID, &env.Name, &payload, &metadata, &env.OccurredAt); err != nil {
			rows.Close()
			return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
		}
		env.AggregateType, env.AggregateID = s.mapping.Type, id
		if env.Payload, err = s.mapping.Decode(env.Name, payload); err != nil {
			rows.Close()
			return zero, fmt.Errorf("repository: load %s %s: decode event %s (version %d): %w", s.mapping.Type, id, env.Name, env.Version, err)
		}
		if len(metadata) > 0 {
			var md storedMetadata
			if err := json.Unmarshal(metadata, &md); err != nil {
				rows.Close()
				return zero, fmt.Errorf("repository: load %s %s: decode metadata of version %d: %w", s.mapping.Type, id, env.Version, err)
			}
			env.Metadata = aggregate.Metadata(md)
		}
		history = append(history, env)
	}
	if err := rows.Err(); err != nil {
		return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
	}
	if len(history) == 0 {
		return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, aggregate.ErrNotFound)
	}
	a := s.mapping.New(id)
	root, err := rootOf(a)
	if err != nil {
		return zero, fmt.Errorf("repository: load %s %s: EventMapping.New returned a nil aggregate", s.mapping.Type, id)
	}
	if root.ID() != id || root.Type() != s.mapping.Type || root.Version() != 0 {
		return zero, fmt.Errorf("repository: load %s %s: EventMapping.New returned an aggregate with id %q, type %q, version %d (want an empty one, Init'ed with the ID and type)",
			s.mapping.Type, id, root.ID(), root.Type(), root.Version())
	}
	if err := aggregate.Replay(root, history, loadOptions(ctx, s.options)...); err != nil {
		return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
	}
	return a, nil
}

// Save appends a's uncommitted events to its stream and writes them to the
// outbox, in one transaction, and marks a committed after the commit. If
// another writer appended first, it returns an [*aggregate.ConflictError]
// and writes nothing; a new aggregate whose stream exists gets an
// [*aggregate.AlreadyExistsError]. Events lacking metadata get it from ctx.
func (s *EventStore[A]) Save(ctx context.Context, a A) error {
	return save(ctx, s.db, s.mapping.Type, a, s.write)
}

// SaveTx is [EventStore.Save] inside the caller's transaction; see
// [Postgres.SaveTx] for who marks the aggregate committed. After an error,
// roll tx back.
func (s *EventStore[A]) SaveTx(ctx context.Context, tx pgx.Tx, a A) error {
	return saveInTx(ctx, tx, s.mapping.Type, a, s.write)
}

func (s *EventStore[A]) write(ctx context.Context, tx pgx.Tx, root *aggregate.Root, a A, base int64) error {
	return conflictOr(s.writeTx(ctx, tx, root, a, base), s.mapping.Type, root.ID(), base)
}

func (s *EventStore[A]) writeTx(ctx context.Context, tx pgx.Tx, root *aggregate.Root, a A, base int64) error {
	typ, id := s.mapping.Type, root.ID()
	events := pendingEvents(ctx, root)[base-root.CommittedVersion():]
	n := len(events)
	var (
		versions = make([]int64, n)
		ids      = make([]string, n)
		names    = make([]string, n)
		payloads = make([]string, n)
		metas    = make([]*string, n)
		times    = make([]time.Time, n)
	)
	for i, e := range events {
		payload, err := json.Marshal(e.Payload)
		if err != nil {
			return fmt.Errorf("repository: save %s %s: encode event %s: %w", typ, id, e.Name, err)
		}
		versions[i], ids[i], names[i], payloads[i], times[i] = e.Version, e.ID, e.Name, string(payload), e.OccurredAt
		if !e.Metadata.IsZero() {
			md, err := json.Marshal(storedMetadata(e.Metadata))
			if err != nil {
				return fmt.Errorf("repository: save %s %s: encode metadata: %w", typ, id, err)
			}
			m := string(md)
			metas[i] = &m
		}
	}
	tag, err := tx.Exec(ctx, s.sqlAppend, typ, id, versions, ids, names, payloads, metas, times)
	if err != nil {
		return fmt.Errorf("repository: save %s %s: %w", typ, id, err)
	}
	if tag.RowsAffected() != int64(n) && base == 0 {
		return &aggregate.AlreadyExistsError{Type: typ, ID: id}
	}
	if tag.RowsAffected() != int64(n) {
		actual := int64(-1)
		if err := tx.QueryRow(ctx, s.sqlVersion, typ, id, ids).Scan(&actual); err != nil {
			actual = -1
		}
		return &aggregate.ConflictError{Type: typ, ID: id, Expected: base, Actual: actual}
	}
	if err := s.outbox.Write(ctx, tx, events...); err != nil {
		return fmt.Errorf("repository: save %s %s: write events to outbox: %w", typ, id, err)
	}
	if s.afterSave != nil {
		if err := s.afterSave(ctx, tx, a); err != nil {
			return fmt.Errorf("repository: save %s %s: after save: %w", typ, id, err)
		}
	}
	return nil
}

// Update loads the aggregate, runs fn on it and saves it, in one
// transaction, like [Postgres.Update]; conflicts are retried as
// [EventStoreConfig.Retry] says.
func (s *EventStore[A]) Update(ctx context.Context, id string, fn func(A) error) error {
	return update(ctx, s.db, s.retry, s.mapping.Type, id, fn, s.updateTx)
}

// UpdateTx is [EventStore.Update] inside the caller's transaction, without
// retries.
func (s *EventStore[A]) UpdateTx(ctx context.Context, tx pgx.Tx, id string, fn func(A) error) error {
	return updateInTx(ctx, tx, s.mapping.Type, id, fn, s.updateTx)
}

func (s *EventStore[A]) updateTx(ctx context.Context, tx pgx.Tx, id string, fn func(A) error) (A, error) {
	a, err := s.load(ctx, tx, id)
	if err != nil {
		return a, err
	}
	if err := fn(a); err != nil {
		return a, err
	}
	root := a.AggregateRoot()
	if !root.HasChanges() {
		return a, nil
	}
	return a, s.write(ctx, tx, root, a, root.CommittedVersion())
}

var _ Repository[aggregate.Aggregate] = (*EventStore[aggregate.Aggregate])(nil)
