package outbox

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/telemetry"
	"github.com/dddkit/dddkit/internal/uuidv7"
)

// ErrInvalidSchedule is returned when a deadline cannot be scheduled:
// an empty key, a zero time, or an event whose type is not registered
// with an aggregate type.
var ErrInvalidSchedule = errors.New("outbox: invalid schedule")

// DeadlineEnvelope builds the envelope of a deadline: event, to be
// published at (or soon after) at under key. It is for [Source]
// implementations that schedule, such as [Memory] and the PostgreSQL
// outbox.
//
// The envelope:
//   - has a new event ID, so every Schedule call (a "generation" of the
//     key) is a distinct event: a redelivery of the fired message carries
//     the same ID and an inbox drops it, while a schedule that replaced
//     another is a new event;
//   - has the aggregate type event's type was registered with in reg (so
//     it is published on that type's topic, where its handlers subscribe)
//     and key as aggregate ID: the deadline is its own ordering domain
//     and never waits behind, nor holds back, the events of an aggregate;
//   - has version 1 and at as occurred-at time;
//   - carries the metadata of ctx ([aggregate.MetadataFromContext]):
//     scheduled from an event handler, the correlation ID of the event
//     that scheduled it and that event's ID as causation ID, and the
//     trace context of ctx's span (or else of the metadata).
func DeadlineEnvelope(ctx context.Context, reg *eventbus.Registry, key string, at time.Time, event aggregate.Event) (aggregate.Envelope, error) {
	var errs []error
	if reg == nil {
		errs = append(errs, errors.New("nil Registry"))
	}
	if key == "" {
		errs = append(errs, errors.New("empty key"))
	}
	if at.IsZero() {
		errs = append(errs, errors.New("zero time"))
	}
	if event == nil {
		errs = append(errs, errors.New("nil event"))
	}
	if err := errors.Join(errs...); err != nil {
		return aggregate.Envelope{}, fmt.Errorf("%w %q: %w", ErrInvalidSchedule, key, err)
	}
	name := event.EventName()
	typ, ok := reg.AggregateTypeOf(name)
	switch {
	case !ok:
		return aggregate.Envelope{}, fmt.Errorf("%w %q: event %s is not registered (call eventbus.Register first)", ErrInvalidSchedule, key, name)
	case typ == "":
		return aggregate.Envelope{}, fmt.Errorf("%w %q: event %s has no topic: register it with eventbus.AggregateType(...)", ErrInvalidSchedule, key, name)
	}
	return aggregate.Envelope{
		ID:            uuidv7.New().String(),
		Name:          name,
		AggregateType: typ,
		AggregateID:   key,
		Version:       1,
		OccurredAt:    at,
		Metadata:      telemetry.Metadata(ctx).Clone(),
		Payload:       event,
	}, nil
}

// Schedule writes event as a deadline due at at under key: the relay
// publishes it once it is due (at the next relay pass after at; at
// once when at has passed), and until then [Memory.Cancel] removes it.
// A deadline still scheduled under key is replaced (it will not fire).
// See [DeadlineEnvelope] for the message it becomes.
//
// Memory has no transaction: the deadline is written at once, whatever
// the caller does next.
func (m *Memory) Schedule(ctx context.Context, key string, at time.Time, event aggregate.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	env, err := DeadlineEnvelope(ctx, m.reg, key, at, event)
	if err != nil {
		return err
	}
	enc, err := Encode(m.reg, env)
	if err != nil {
		return err
	}
	e := enc[0]
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancel(key)
	m.seq++
	m.rows = append(m.rows, &memRow{seq: m.seq, env: e.Event, version: e.SchemaVersion, payload: e.Payload,
		status: StatusScheduled, dueAt: at, key: key})
	m.ids[e.Event.ID] = struct{}{}
	m.signal()
	return nil
}

// Cancel removes the deadline scheduled under key and reports whether
// there was one. A deadline the relay has taken up (it was due) is no
// longer scheduled: Cancel reports false and it fires.
func (m *Memory) Cancel(ctx context.Context, key string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cancel(key), nil
}

// cancel drops the scheduled row of key; m.mu is held.
func (m *Memory) cancel(key string) bool {
	for i, r := range m.rows {
		if r.status == StatusScheduled && r.key == key {
			delete(m.ids, r.env.ID)
			m.rows = append(m.rows[:i], m.rows[i+1:]...)
			return true
		}
	}
	return false
}

// promote turns the scheduled rows that are due at now into pending
// rows at the end of the order (in order of due time), and records when
// the next one is due; m.mu is held.
func (m *Memory) promote(now time.Time) {
	var due []*memRow
	kept := m.rows[:0]
	next := time.Time{}
	for _, r := range m.rows {
		if r.status == StatusScheduled {
			if !r.dueAt.After(now) {
				due = append(due, r)
				continue
			}
			if next.IsZero() || r.dueAt.Before(next) {
				next = r.dueAt
			}
		}
		kept = append(kept, r)
	}
	m.nextDue = next
	if len(due) == 0 {
		return
	}
	clear(m.rows[len(kept):])
	m.rows = kept
	sortByDue(due)
	for _, r := range due {
		m.seq++
		r.seq, r.status = m.seq, StatusPending
		m.rows = append(m.rows, r)
	}
}

func sortByDue(rows []*memRow) {
	slices.SortFunc(rows, func(a, b *memRow) int {
		return cmp.Or(a.dueAt.Compare(b.dueAt), cmp.Compare(a.seq, b.seq))
	})
}

// NextDue implements [Source]: when the earliest deadline that was not
// due at the last Fetch becomes due.
func (m *Memory) NextDue() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nextDue
}
