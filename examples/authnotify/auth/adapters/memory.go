// Package adapters holds the auth module's adapters of the domain's
// ports. [Memory] is the in-memory [domain.Repository]: for tests and the
// embedded default until dddkit's repository package takes its place
// (in-memory and PostgreSQL with the outbox, one transaction for state and
// events).
package adapters

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/valueobject"
)

// EventSink receives the events of every save, oldest first, while the
// save holds the repository's lock: a sink sees each user's events in
// version order, and if it returns an error the save fails and nothing is
// stored. An in-memory outbox implements it; so does [SinkFunc].
type EventSink interface {
	Append(ctx context.Context, events ...aggregate.Envelope) error
}

// SinkFunc adapts a function to an [EventSink].
type SinkFunc func(ctx context.Context, events ...aggregate.Envelope) error

// Append calls f.
func (f SinkFunc) Append(ctx context.Context, events ...aggregate.Envelope) error {
	return f(ctx, events...)
}

// Memory is a [domain.Repository] that keeps users in memory. It stores
// each user as a [domain.Snapshot] and rebuilds it on every load, so the
// domain's mapping is exercised as a database adapter would; it checks
// versions on every save like one, returning an [*aggregate.ConflictError]
// when a user changed between load and save. It is safe for concurrent
// use; [Memory.Update] runs fn without holding the lock.
type Memory struct {
	factory *domain.Factory
	sink    EventSink

	mu      sync.Mutex
	rows    map[string]row    // by user ID
	byEmail map[string]string // canonical email → user ID
}

type row struct {
	snapshot domain.Snapshot
	version  int64
}

// NewMemory returns an empty repository that rebuilds users with factory
// and hands the events of every save to sink (nil: events are dropped).
func NewMemory(factory *domain.Factory, sink EventSink) (*Memory, error) {
	if factory == nil {
		return nil, errors.New("auth/adapters: NewMemory: nil factory")
	}
	return &Memory{factory: factory, sink: sink, rows: map[string]row{}, byEmail: map[string]string{}}, nil
}

// Len returns the number of stored users.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

// ByID implements [domain.Repository].
func (m *Memory) ByID(_ context.Context, id valueobject.ID) (*domain.User, error) {
	m.mu.Lock()
	r, ok := m.rows[id.String()]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("auth: user %s: %w", id, aggregate.ErrNotFound)
	}
	return m.load(r)
}

// ByEmail implements [domain.Repository].
func (m *Memory) ByEmail(_ context.Context, email valueobject.Email) (*domain.User, error) {
	key := domain.CanonicalEmail(email).String()
	m.mu.Lock()
	id, ok := m.byEmail[key]
	r := m.rows[id]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("auth: user with email %s: %w", key, aggregate.ErrNotFound)
	}
	return m.load(r)
}

func (m *Memory) load(r row) (*domain.User, error) {
	u, err := m.factory.Unmarshal(r.snapshot)
	if err != nil {
		return nil, err
	}
	if err := u.Restore(r.version); err != nil {
		return nil, err
	}
	return u, nil
}

// Add implements [domain.Repository].
func (m *Memory) Add(ctx context.Context, u *domain.User) error {
	if u == nil {
		return errors.New("auth/adapters: Add(nil)")
	}
	if !u.IsNew() {
		return fmt.Errorf("auth/adapters: Add: user %s was loaded from the store; use Update", u.ID())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.rows[u.ID()]; ok {
		return &aggregate.ConflictError{Type: u.Type(), ID: u.ID(), Expected: 0, Actual: -1}
	}
	if _, ok := m.byEmail[u.Email().String()]; ok {
		return emailTaken(u)
	}
	return m.saveLocked(ctx, u)
}

// emailTaken is the error of a save that would give u an address another
// user holds.
func emailTaken(u *domain.User) error {
	return fmt.Errorf("%w: %s", domain.ErrEmailTaken, u.Email())
}

// Update implements [domain.Repository].
func (m *Memory) Update(ctx context.Context, id valueobject.ID, fn func(*domain.User) error) error {
	u, err := m.ByID(ctx, id)
	if err != nil {
		return err
	}
	if err := fn(u); err != nil {
		return err
	}
	if !u.HasChanges() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	stored, ok := m.rows[u.ID()]
	if !ok {
		return fmt.Errorf("auth: user %s: %w", id, aggregate.ErrNotFound)
	}
	if stored.version != u.CommittedVersion() {
		return &aggregate.ConflictError{Type: u.Type(), ID: u.ID(), Expected: u.CommittedVersion(), Actual: stored.version}
	}
	if owner, ok := m.byEmail[u.Email().String()]; ok && owner != u.ID() {
		return emailTaken(u)
	}
	return m.saveLocked(ctx, u)
}

// saveLocked hands the events to the sink and stores the state; m.mu is
// held. The events carry the request's metadata (correlation ID) where
// the aggregate left it empty, as dddkit's repositories do.
func (m *Memory) saveLocked(ctx context.Context, u *domain.User) error {
	events := u.Changes()
	if md := aggregate.MetadataFromContext(ctx); !md.IsZero() {
		for i := range events {
			events[i].Metadata = events[i].Metadata.Merge(md)
		}
	}
	if m.sink != nil && len(events) > 0 {
		if err := m.sink.Append(ctx, events...); err != nil {
			return fmt.Errorf("auth/adapters: save user %s: event sink: %w", u.ID(), err)
		}
	}
	s := u.Snapshot()
	if old, ok := m.rows[u.ID()]; ok && old.snapshot.Email != s.Email {
		delete(m.byEmail, old.snapshot.Email)
	}
	m.rows[u.ID()] = row{snapshot: s, version: u.Version()}
	m.byEmail[s.Email] = u.ID()
	u.MarkCommitted()
	return nil
}
