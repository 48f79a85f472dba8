package repository

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// MemoryEventLogConfig configures a [*MemoryEventLog]. A nil
// *MemoryEventLogConfig means the defaults.
type MemoryEventLogConfig struct {
	// Clock stamps StoredEvent.RecordedAt; nil means time.Now.
	Clock func() time.Time
}

// MemoryEventLog is the in-memory event store: one log of the events of
// every event-sourced aggregate type, in the order they were saved. The
// [*MemoryEventStore] repositories of the aggregate types append to it;
// it implements [Stream] over the whole log, for projections and
// catch-up subscriptions in embedded mode and in unit tests.
//
// Positions are 1, 2, 3, … without gaps; an append is atomic (a save's
// events are all in the log or none is), so Read never has to wait for
// a late commit. Wait is woken by appends.
//
// The log keeps the events as the aggregates recorded them (no encoding),
// so event types must be immutable values, as they should be anyway. A
// MemoryEventLog is safe for concurrent use.
type MemoryEventLog struct {
	sink EventSink
	now  func() time.Time

	mu      sync.RWMutex
	events  []StoredEvent
	streams map[aggstore.Key][]int // the indexes in events of an aggregate's events
	changed chan struct{}          // closed and replaced by every append
}

// NewMemoryEventLog returns an empty log. Each save's events go to sink
// (typically an *outbox.Memory) in the same atomic step as to the log,
// as with [*Memory]. A nil cfg means the defaults.
func NewMemoryEventLog(sink EventSink, cfg *MemoryEventLogConfig) (*MemoryEventLog, error) {
	if sink == nil {
		return nil, errors.New("repository: NewMemoryEventLog: sink is nil")
	}
	now := time.Now
	if cfg != nil && cfg.Clock != nil {
		now = cfg.Clock
	}
	return &MemoryEventLog{
		sink:    sink,
		now:     now,
		streams: make(map[aggstore.Key][]int),
		changed: make(chan struct{}),
	}, nil
}

// Read implements [Stream].
func (l *MemoryEventLog) Read(ctx context.Context, after int64, filter StreamFilter, limit int) ([]StoredEvent, error) {
	if limit < 1 {
		return nil, fmt.Errorf("repository: read event stream: limit %d is not positive", limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("repository: read event stream: %w", err)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []StoredEvent
	for i := int(max(after, 0)); i < len(l.events) && len(out) < limit; i++ {
		e := l.events[i]
		if filter.matches(e.Event.Name, e.Event.AggregateType) {
			out = append(out, cloneStored(e))
		}
	}
	return out, nil
}

// Head implements [Stream].
func (l *MemoryEventLog) Head(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("repository: event stream head: %w", err)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return int64(len(l.events)), nil
}

// Wait implements [Stream]: it returns at once when the log holds an
// event after after, and otherwise when the next save appends one.
func (l *MemoryEventLog) Wait(ctx context.Context, after int64) error {
	l.mu.RLock()
	n, changed := int64(len(l.events)), l.changed
	l.mu.RUnlock()
	if n > after {
		return nil
	}
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Len returns the number of events in the log.
func (l *MemoryEventLog) Len() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.events)
}

// history returns the events of one aggregate, in version order.
func (l *MemoryEventLog) history(typ, id string) []aggregate.Envelope {
	l.mu.RLock()
	defer l.mu.RUnlock()
	idx := l.streams[aggstore.Key{Type: typ, ID: id}]
	out := make([]aggregate.Envelope, len(idx))
	for i, j := range idx {
		out[i] = cloneEnvelope(l.events[j].Event)
	}
	return out
}

// append adds the events of a save of the aggregate typ/id that was
// loaded at version expected, if the log still holds that version, and
// hands them to the sink; all or nothing.
func (l *MemoryEventLog) append(ctx context.Context, typ, id string, expected int64, events []aggregate.Envelope) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := aggstore.Key{Type: typ, ID: id}
	actual := int64(len(l.streams[key]))
	if actual != expected {
		if expected == 0 {
			return &aggregate.AlreadyExistsError{Type: typ, ID: id}
		}
		return &aggregate.ConflictError{Type: typ, ID: id, Expected: expected, Actual: actual}
	}
	for i, e := range events {
		if e.Version != expected+int64(i)+1 {
			return fmt.Errorf("repository: save %s %s: event %s has version %d, want %d", typ, id, e.Name, e.Version, expected+int64(i)+1)
		}
	}
	if err := l.sink.Append(ctx, events...); err != nil {
		return fmt.Errorf("repository: save %s %s: append events: %w", typ, id, err)
	}
	at := l.now()
	idx := l.streams[key]
	for _, e := range events {
		idx = append(idx, len(l.events))
		l.events = append(l.events, StoredEvent{Position: int64(len(l.events)) + 1, Event: cloneEnvelope(e), RecordedAt: at})
	}
	l.streams[key] = idx
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}

var _ Stream = (*MemoryEventLog)(nil)

// matches reports whether an event of that name and aggregate type is
// selected.
func (f StreamFilter) matches(name, aggregateType string) bool {
	return (len(f.EventNames) == 0 || slices.Contains(f.EventNames, name)) &&
		(len(f.AggregateTypes) == 0 || slices.Contains(f.AggregateTypes, aggregateType))
}

func cloneStored(e StoredEvent) StoredEvent {
	e.Event = cloneEnvelope(e.Event)
	return e
}

// cloneEnvelope copies what of an envelope is mutable: the metadata's
// values. Payloads are immutable values.
func cloneEnvelope(e aggregate.Envelope) aggregate.Envelope {
	e.Metadata.Values = maps.Clone(e.Metadata.Values)
	return e
}

// MemoryEventStore is the in-memory adapter of [Repository] for
// event-sourced aggregates, the counterpart of postgres.EventStore: an
// aggregate is the sequence of its events in a [*MemoryEventLog], which
// the stores of every aggregate type share. Load replays them; Save
// appends the new ones, with optimistic concurrency on the version, and
// hands them to the log's sink in the same atomic step. It keeps no
// snapshots (EventMapping.Snapshot is ignored: replaying from memory is
// cheap).
//
// A MemoryEventStore is safe for concurrent use. Update is optimistic: it
// does not hold a lock while fn runs.
type MemoryEventStore[A aggregate.Aggregate] struct {
	log     *MemoryEventLog
	mapping EventMapping[A]
	retry   aggstore.Retry
	options []aggregate.Option
}

// NewMemoryEventStore returns the event store of mapping.Type in log. cfg
// (nil = defaults) is the configuration of [*Memory]: the options
// applied to loaded aggregates and Update's retry policy.
func NewMemoryEventStore[A aggregate.Aggregate](log *MemoryEventLog, mapping EventMapping[A], cfg *MemoryConfig) (*MemoryEventStore[A], error) {
	if cfg == nil {
		cfg = &MemoryConfig{}
	}
	var errs []error
	if log == nil {
		errs = append(errs, errors.New("repository: NewMemoryEventStore: log is nil"))
	}
	errs = append(errs, mapping.Validate())
	rp, err := aggstore.NewRetry(cfg.Retry, "MemoryConfig.Retry")
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &MemoryEventStore[A]{log: log, mapping: mapping, retry: rp, options: slices.Clone(cfg.Options)}, nil
}

// Load replays the aggregate's events, then applies
// [MemoryConfig.Options] and the metadata of ctx to its root. No events
// give an error wrapping [aggregate.ErrNotFound].
func (s *MemoryEventStore[A]) Load(ctx context.Context, id string) (A, error) {
	var zero A
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, err)
	}
	history := s.log.history(s.mapping.Type, id)
	if len(history) == 0 {
		return zero, fmt.Errorf("repository: load %s %s: %w", s.mapping.Type, id, aggregate.ErrNotFound)
	}
	return aggstore.Rebuild(s.mapping.Type, id, "EventMapping.New", s.mapping.New(id), 0, history, aggstore.LoadOptions(ctx, s.options))
}

// Save appends a's uncommitted events to the log and hands them to the
// log's sink, if the log still holds a's committed version; then it
// marks a committed. See [Repository].Save for the errors; on any error
// nothing is appended and a is left as it was. Events lacking metadata
// get it from ctx.
func (s *MemoryEventStore[A]) Save(ctx context.Context, a A) (err error) {
	root, err := aggstore.CheckSave(a, s.mapping.Type)
	if err != nil {
		return err
	}
	if !root.HasChanges() {
		return nil
	}
	ctx, span := aggstore.StartSave(ctx, s.mapping.Type, root)
	defer func() { telemetry.End(span, err) }()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("repository: save %s %s: %w", s.mapping.Type, root.ID(), err)
	}
	events := aggstore.PendingEvents(ctx, root)
	if err := s.log.append(ctx, s.mapping.Type, root.ID(), root.CommittedVersion(), events); err != nil {
		return err
	}
	aggregate.MarkCommitted(root, root.Version())
	return nil
}

// Update loads the aggregate, runs fn on it and saves it. An error from
// fn is returned unchanged and nothing is saved. A concurrency conflict
// is retried as [MemoryConfig.Retry] says, each time with a freshly
// loaded aggregate and a new call of fn.
func (s *MemoryEventStore[A]) Update(ctx context.Context, id string, fn func(A) error) error {
	if fn == nil {
		return fmt.Errorf("repository: update %s %s: fn is nil", s.mapping.Type, id)
	}
	return s.retry.Run(ctx, "update "+s.mapping.Type+" "+id, func(ctx context.Context) error {
		a, err := s.Load(ctx, id)
		if err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
		return s.Save(ctx, a)
	})
}

var _ Repository[aggregate.Aggregate] = (*MemoryEventStore[aggregate.Aggregate])(nil)
