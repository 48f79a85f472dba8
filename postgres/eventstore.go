package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/repository"
)

// EventStore is the PostgreSQL adapter of [repository.Repository] for
// event-sourced aggregates: an aggregate is the sequence of its events,
// stored one row each in the events table (type, ID, version, event ID,
// name, schema version, payload, metadata, occurred-at). Load replays
// them (upcasting old payloads through the registry); Save appends the
// new ones and writes them to the [Outbox] in the same transaction, with
// optimistic concurrency on the version. Its unit-of-work rules are
// those of [Repository].
//
// The payloads are encoded and decoded by the event registry of the
// Outbox, the one registry of the service: an event type is registered
// once, for the store, the outbox and the consumers.
type EventStore[A aggregate.Aggregate] struct {
	db      DB
	outbox  *Outbox
	mapping repository.EventMapping[A]
	retry   aggstore.Retry
	options []aggregate.Option

	sqlLoad, sqlAppend, sqlVersion string
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
	events := ob.n.q(ob.n.t.Events)
	return &EventStore[A]{
		db:      db,
		outbox:  ob,
		mapping: mapping,
		retry:   retry,
		options: slices.Clone(cfg.Options),
		sqlLoad: `SELECT version, event_id, name, event_version, payload, metadata, occurred_at FROM ` + events +
			` WHERE type = $1 AND id = $2 ORDER BY version`,
		sqlAppend: `INSERT INTO ` + events + ` (type, id, version, event_id, name, event_version, payload, metadata, occurred_at)
SELECT $1, $2, v, e, n, ev, p::jsonb, m::jsonb, o
FROM unnest($3::bigint[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::timestamptz[]) AS u(v, e, n, ev, p, m, o)
ON CONFLICT (type, id, version) DO NOTHING`,
		sqlVersion: `SELECT coalesce(max(version), 0) FROM ` + events + ` WHERE type = $1 AND id = $2 AND event_id <> ALL($3::text[])`,
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
// there is one). No events give an error wrapping [aggregate.ErrNotFound].
func (s *EventStore[A]) Load(ctx context.Context, id string) (A, error) {
	return s.load(ctx, querier(ctx, s.db), id, false)
}

func (s *EventStore[A]) load(ctx context.Context, q DB, id string, _ bool) (A, error) {
	var zero A
	rows, err := q.Query(ctx, s.sqlLoad, s.mapping.Type, id)
	if err != nil {
		return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
	}
	var history []aggregate.Envelope
	for rows.Next() {
		var (
			env           aggregate.Envelope
			schemaVersion int
			payload       []byte
			metadata      []byte
		)
		if err := rows.Scan(&env.Version, &env.ID, &env.Name, &schemaVersion, &payload, &metadata, &env.OccurredAt); err != nil {
			rows.Close()
			return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
		}
		env.AggregateType, env.AggregateID = s.mapping.Type, id
		if env.Payload, err = s.outbox.reg.DecodePayload(env.Name, schemaVersion, payload); err != nil {
			rows.Close()
			return zero, fmt.Errorf("repository: load %s %s: event %s (version %d): %w", s.mapping.Type, id, env.Name, env.Version, err)
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
	root, err := aggstore.RootOf(a)
	if err != nil {
		return zero, fmt.Errorf("repository: load %s %s: EventMapping.New returned a nil aggregate", s.mapping.Type, id)
	}
	if root.ID() != id || root.Type() != s.mapping.Type || root.Version() != 0 {
		return zero, fmt.Errorf("repository: load %s %s: EventMapping.New returned an aggregate with id %q, type %q, version %d (want an empty one, Init'ed with the ID and type)",
			s.mapping.Type, id, root.ID(), root.Type(), root.Version())
	}
	if err := aggregate.Replay(root, history, aggstore.LoadOptions(ctx, s.options)...); err != nil {
		return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
	}
	return a, nil
}

// Save appends a's uncommitted events; see [repository.Repository].Save
// for the errors.
func (s *EventStore[A]) Save(ctx context.Context, a A) error {
	return save(ctx, s.db, s.mapping.Type, a, s.write)
}

// Update loads the aggregate, runs fn on it and saves it; see
// [repository.Repository].Update and [RepositoryConfig].Retry.
func (s *EventStore[A]) Update(ctx context.Context, id string, fn func(A) error) error {
	return update(ctx, s.db, s.retry, s.mapping.Type, id, fn, s.load, s.write)
}

func (s *EventStore[A]) write(ctx context.Context, tx pgx.Tx, root *aggregate.Root, _ A, base int64) error {
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
	tag, err := tx.Exec(ctx, s.sqlAppend, typ, id, versions, ids, names, evVersions, payloads, metas, times)
	if err != nil {
		return fmt.Errorf("repository: save %s %s: %w", typ, id, err)
	}
	if tag.RowsAffected() != int64(n) {
		if base == 0 {
			return &aggregate.AlreadyExistsError{Type: typ, ID: id}
		}
		actual := int64(-1)
		if err := tx.QueryRow(ctx, s.sqlVersion, typ, id, ids).Scan(&actual); err != nil {
			actual = -1
		}
		return &aggregate.ConflictError{Type: typ, ID: id, Expected: base, Actual: actual}
	}
	if err := s.outbox.write(ctx, tx, rows); err != nil {
		return fmt.Errorf("repository: save %s %s: write events to outbox: %w", typ, id, err)
	}
	return nil
}

var _ repository.Repository[aggregate.Aggregate] = (*EventStore[aggregate.Aggregate])(nil)
