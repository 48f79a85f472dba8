package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// Memory is an outbox kept in memory: for unit tests and for running a
// service with no database (the embedded default of the example). The
// in-memory repository appends to it when its "transaction" commits; a
// [Relay] publishes what it holds with the same rules as from PostgreSQL:
// sequence order, per-aggregate blocking on failures, retries, failed
// after RelayConfig.Retry.MaxAttempts. It schedules deadlines too
// ([Memory.Schedule], [Memory.Cancel]): it is a deadline.Scheduler.
//
// Published events are dropped. Memory is safe for concurrent use.
type Memory struct {
	mu        sync.Mutex
	seq       int64
	rows      []*memRow // pending and failed, in sequence order
	ids       map[string]struct{}
	published int64
	wake      chan struct{}
	lead      chan struct{} // holds a token while a relay leads
	reg       *eventbus.Registry
	nextDue   time.Time // earliest due time of a scheduled row, as of the last Fetch
}

type memRow struct {
	seq      int64
	env      aggregate.Envelope
	version  int // schema version of the payload
	payload  []byte
	status   Status
	attempts int
	lastErr  string
	nextAt   time.Time
	dueAt    time.Time // of a scheduled row
	key      string    // schedule key of a scheduled row
}

// NewMemory returns an empty in-memory outbox that encodes events with
// reg, the service's one event registry (as the PostgreSQL outbox does).
func NewMemory(reg *eventbus.Registry) (*Memory, error) {
	if reg == nil {
		return nil, errors.New("outbox: NewMemory: nil Registry")
	}
	return &Memory{ids: make(map[string]struct{}), wake: make(chan struct{}, 1), lead: make(chan struct{}, 1), reg: reg}, nil
}

// Append adds committed events to the outbox, like the PostgreSQL
// outbox's Write does in a transaction: all or none. Envelopes are validated the same way and the
// payloads encoded to JSON at once, so an event the PostgreSQL store would
// refuse is refused here too (errors wrap [ErrInvalidEvent]); an event ID
// that is still in the outbox is refused as a duplicate.
func (m *Memory) Append(ctx context.Context, events ...aggregate.Envelope) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	_, span := telemetry.StartOutboxWrite(ctx, len(events))
	defer func() { telemetry.End(span, err) }()
	enc, err := Encode(m.reg, events...)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[string]struct{}, len(enc))
	for _, e := range enc {
		_, dupOld := m.ids[e.Event.ID]
		_, dupNew := seen[e.Event.ID]
		if dupOld || dupNew {
			return fmt.Errorf("%w: duplicate event ID %s", ErrInvalidEvent, e.Event.ID)
		}
		seen[e.Event.ID] = struct{}{}
	}
	for _, e := range enc {
		m.seq++
		m.rows = append(m.rows, &memRow{seq: m.seq, env: e.Event, version: e.SchemaVersion, payload: e.Payload, status: StatusPending})
		env := e.Event
		m.ids[env.ID] = struct{}{}
	}
	m.signal()
	return nil
}

// signal wakes the leading relay.
func (m *Memory) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Pending returns the events waiting to be published (retrying ones
// included), oldest first, with their payloads.
func (m *Memory) Pending() []aggregate.Envelope { return m.byStatus(StatusPending) }

// Failed returns the events that ran out of attempts, oldest first.
func (m *Memory) Failed() []aggregate.Envelope { return m.byStatus(StatusFailed) }

func (m *Memory) byStatus(s Status) []aggregate.Envelope {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []aggregate.Envelope
	for _, r := range m.rows {
		if r.status == s {
			env := r.env
			env.Metadata = env.Metadata.Clone()
			out = append(out, env)
		}
	}
	return out
}

// Published returns how many events were published so far.
func (m *Memory) Published() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.published
}

// Stats counts pending, retrying and failed events. It implements
// [Source] and never fails.
func (m *Memory) Stats(context.Context) (Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s Stats
	now := time.Now()
	for _, r := range m.rows {
		switch r.status {
		case StatusPending:
			s.Pending++
			if r.attempts > 0 {
				s.Retrying++
			}
			if s.Pending == 1 {
				s.OldestPending = max(now.Sub(r.env.OccurredAt), 0)
			}
		case StatusFailed:
			s.Failed++
		case StatusScheduled:
			s.Scheduled++
		}
	}
	return s, nil
}

// RetryFailed puts every failed event back to pending with its attempts
// reset and returns how many.
func (m *Memory) RetryFailed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.rows {
		if r.status == StatusFailed {
			r.status, r.attempts, r.nextAt = StatusPending, 0, time.Time{}
			n++
		}
	}
	if n > 0 {
		m.signal()
	}
	return n
}

// Lead implements [Source]: one relay of this process leads a Memory at
// a time; the others wait. wake receives after each Append and
// RetryFailed.
func (m *Memory) Lead(ctx context.Context, fn func(ctx context.Context, wake <-chan struct{}) error) error {
	select {
	case m.lead <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	defer func() { <-m.lead }()
	return fn(ctx, m.wake)
}

// Fetch implements [Source]. Deadlines that are due first become
// pending at the end of the order.
func (m *Memory) Fetch(_ context.Context, limit int, inFlight SeqRange) ([]Pending, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var blocked map[aggstore.Key]bool
	now := time.Now()
	m.promote(now)
	var out []Pending
	for _, r := range m.rows {
		if len(out) >= limit {
			break
		}
		if r.status == StatusScheduled {
			continue
		}
		k := aggstore.KeyOf(&r.env)
		if blocked[k] {
			continue
		}
		if r.status == StatusFailed || r.nextAt.After(now) || inFlight.Contains(r.seq) {
			if blocked == nil {
				blocked = make(map[aggstore.Key]bool)
			}
			blocked[k] = true
			continue
		}
		env := r.env
		env.Payload = nil
		env.Metadata = env.Metadata.Clone()
		out = append(out, Pending{Seq: r.seq, Event: env, SchemaVersion: r.version, Payload: r.payload, Attempts: r.attempts})
	}
	return out, nil
}

// MarkPublished implements [Source]: published events are dropped.
func (m *Memory) MarkPublished(_ context.Context, seqs []int64) error {
	done := make(map[int64]struct{}, len(seqs))
	for _, s := range seqs {
		done[s] = struct{}{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.rows[:0]
	for _, r := range m.rows {
		if _, ok := done[r.seq]; ok {
			delete(m.ids, r.env.ID)
			m.published++
			continue
		}
		kept = append(kept, r)
	}
	clear(m.rows[len(kept):])
	m.rows = kept
	return nil
}

// MarkAttempts implements [Source].
func (m *Memory) MarkAttempts(_ context.Context, as []Attempt) error {
	by := make(map[int64]Attempt, len(as))
	for _, a := range as {
		by[a.Seq] = a
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rows {
		if a, ok := by[r.seq]; ok {
			r.attempts, r.lastErr = a.Attempts, a.Err
			if a.Final {
				r.status, r.nextAt = StatusFailed, time.Time{}
			} else {
				r.nextAt = now.Add(a.Delay)
			}
		}
	}
	return nil
}

var _ Source = (*Memory)(nil)

// Registry returns the event registry the outbox encodes with.
func (m *Memory) Registry() *eventbus.Registry { return m.reg }
