package eventbus

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/keylock"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// Inbox makes event handlers idempotent: it remembers, per handler name,
// the IDs of the events whose effects have been committed, and runs a
// handler only for an event it has not seen. [HandleOnce] uses it: Process
// for one event at a time, ProcessBatch for batches (see "Batches" in the
// package documentation). Two adapters implement it: the
// PostgreSQL inbox of package [github.com/dddkit/dddkit/postgres], whose
// record commits in one transaction with the handler's own writes, and
// [MemoryInbox], for the embedded mode and tests. Both pass the shared
// suite of package eventbustest.
type Inbox interface {
	// Process runs fn for the event env under handler name once: in one
	// transaction it records (handler, env.ID) and, only if that record
	// is new, calls fn with a context that carries the transaction, and
	// commits. applied is false when handler had processed the event
	// before; then fn did not run. An error of fn is returned as it is
	// and rolls the record back, so a retry runs fn again. A failure to
	// begin the transaction (a database that cannot be reached) wraps
	// [ErrUnavailable]; an empty handler or event ID is a [Permanent]
	// error.
	Process(ctx context.Context, handler string, env aggregate.Envelope, fn func(ctx context.Context) error) (applied bool, err error)

	// ProcessBatch is Process for several events in one transaction: it
	// records the ID of every event of envs under handler, calls fn once
	// with the events whose records are new — in the order of envs, an
	// ID that occurs twice only the first time — and commits. fn is not
	// called when none is new. An error of fn rolls back every record of
	// the batch.
	ProcessBatch(ctx context.Context, handler string, envs []aggregate.Envelope, fn func(ctx context.Context, fresh []aggregate.Envelope) error) error
}

// MemoryInbox is an [Inbox] in memory: for the embedded mode of an
// application and for tests. It records an event when fn returns nil and
// forgets nothing while the process lives (memory grows by an entry per
// handled event); concurrent deliveries of one event to one handler wait
// for each other, so fn runs once. It has no transaction: what fn writes
// elsewhere is not undone when fn fails, only the record is not kept.
//
// The zero value is not usable; create one with [NewMemoryInbox].
type MemoryInbox struct {
	mu    sync.Mutex
	done  map[inboxKey]struct{}
	locks keylock.Set[inboxKey] // one holder per entry
}

type inboxKey struct{ handler, eventID string }

// NewMemoryInbox returns an empty in-memory inbox.
func NewMemoryInbox() *MemoryInbox {
	return &MemoryInbox{done: make(map[inboxKey]struct{})}
}

var _ Inbox = (*MemoryInbox)(nil)

// Process implements [Inbox].
func (m *MemoryInbox) Process(ctx context.Context, handler string, env aggregate.Envelope, fn func(ctx context.Context) error) (applied bool, err error) {
	if err := checkInboxArgs(handler, env); err != nil {
		return false, err
	}
	err = m.ProcessBatch(ctx, handler, []aggregate.Envelope{env}, func(ctx context.Context, _ []aggregate.Envelope) error {
		if err := fn(ctx); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return applied, nil
}

// ProcessBatch implements [Inbox].
func (m *MemoryInbox) ProcessBatch(ctx context.Context, handler string, envs []aggregate.Envelope, fn func(ctx context.Context, fresh []aggregate.Envelope) error) (err error) {
	ctx, span := startInbox(ctx, handler, len(envs))
	defer func() { telemetry.End(span, err) }()
	for _, env := range envs {
		if err := checkInboxArgs(handler, env); err != nil {
			return err
		}
	}
	keys := make([]inboxKey, 0, len(envs))
	for _, env := range envs {
		keys = append(keys, inboxKey{handler, env.ID})
	}
	// Taking the keys in one order means two batches never wait for each
	// other crosswise.
	slices.SortFunc(keys, func(a, b inboxKey) int { return cmp.Compare(a.eventID, b.eventID) })
	keys = slices.Compact(keys)
	held := make([]inboxKey, 0, len(keys))
	defer func() { m.release(held, false) }()
	for _, k := range keys {
		if err := m.acquire(ctx, k); err != nil {
			return err
		}
		held = append(held, k)
	}

	m.mu.Lock()
	fresh := make([]aggregate.Envelope, 0, len(envs))
	seen := make(map[string]bool, len(envs))
	for _, env := range envs {
		if _, done := m.done[inboxKey{handler, env.ID}]; done || seen[env.ID] {
			continue
		}
		seen[env.ID] = true
		fresh = append(fresh, env)
	}
	m.mu.Unlock()
	if len(fresh) == 0 {
		return nil
	}
	if err := fn(ctx, fresh); err != nil {
		return err
	}
	m.release(held, true)
	held = nil
	return nil
}

// acquire waits until no other call holds k and takes it. A key already
// done is taken too; the caller finds it done.
func (m *MemoryInbox) acquire(ctx context.Context, k inboxKey) error {
	if err := m.locks.Lock(ctx, k); err != nil {
		return fmt.Errorf("eventbus: inbox: %w", err)
	}
	return nil
}

// release gives keys back, recording them as done when commit is set.
func (m *MemoryInbox) release(keys []inboxKey, commit bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		if commit {
			m.done[k] = struct{}{}
		}
		m.locks.Unlock(k)
	}
}

// checkInboxArgs refuses what an inbox cannot record.
func checkInboxArgs(handler string, env aggregate.Envelope) error {
	if handler == "" || env.ID == "" {
		return Permanent(fmt.Errorf("eventbus: inbox: need a handler name and an event ID, got %q and %q (event %s)", handler, env.ID, env.Name))
	}
	return nil
}
