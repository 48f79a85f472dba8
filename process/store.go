package process

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/keylock"
)

// Store keeps the state of process instances and which events each
// process has applied, and applies an event to an instance in one
// transaction with the record of the event: an event is applied once,
// however often it is delivered, and a crash never keeps the state
// without the record or the record without the state.
//
// Two adapters implement it: [MemoryStore] (embedded mode, tests) and
// the PostgreSQL store of package postgres (postgres.NewProcessStore),
// whose transaction is a unit of work that the handler's commands,
// repositories and deadlines join. Both pass the suite of package
// processtest.
type Store interface {
	// Apply applies the event env to instance (process, key) once: in
	// one transaction it records (process, env.ID); when that record is
	// new, it loads the instance, locked against concurrent Apply calls
	// on it, calls fn with a context that carries the transaction, saves
	// the instance as fn left it (nothing when fn left State nil) and
	// commits. applied is false when the event had been applied before;
	// fn did not run then. An error of fn rolls everything back and is
	// returned as it is.
	Apply(ctx context.Context, process, key string, env aggregate.Envelope, fn func(ctx context.Context, inst *Instance) error) (applied bool, err error)

	// Load returns instance (process, key); found is false when it was
	// never saved.
	Load(ctx context.Context, process, key string) (inst Instance, found bool, err error)
}

// Instance is the stored form of one process instance.
type Instance struct {
	// State is the instance's state as JSON; nil for an instance that
	// was never saved.
	State []byte
	// Ended is set once the instance ended; a Manager ignores later
	// events of it.
	Ended bool
}

// MemoryStore is a [Store] in memory: for the embedded mode of an
// application and for tests. Apply runs fn once per event and process
// (an [eventbus.MemoryInbox] records the events) and one at a time per
// instance. It has no transaction: what fn writes elsewhere (a deadline,
// a command's effects) is not undone when fn fails; only the instance
// is not saved and the event not recorded, so a retry runs fn again.
//
// The zero value is not usable; create one with [NewMemoryStore].
type MemoryStore struct {
	inbox *eventbus.MemoryInbox

	mu        sync.Mutex
	instances map[instanceKey]Instance
	locks     keylock.Set[instanceKey] // one Apply per instance at a time
}

type instanceKey struct{ process, key string }

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		inbox:     eventbus.NewMemoryInbox(),
		instances: make(map[instanceKey]Instance),
	}
}

var _ Store = (*MemoryStore)(nil)

// Apply implements [Store].
func (m *MemoryStore) Apply(ctx context.Context, process, key string, env aggregate.Envelope, fn func(ctx context.Context, inst *Instance) error) (bool, error) {
	if process == "" || key == "" {
		return false, eventbus.Permanent(errors.New("process: store: empty process name or key"))
	}
	return m.inbox.Process(ctx, process, env, func(ctx context.Context) error {
		k := instanceKey{process, key}
		if err := m.lock(ctx, k); err != nil {
			return err
		}
		defer m.unlock(k)
		m.mu.Lock()
		inst := m.instances[k]
		m.mu.Unlock()
		inst.State = slices.Clone(inst.State)
		if err := fn(ctx, &inst); err != nil {
			return err
		}
		if inst.State != nil {
			m.mu.Lock()
			m.instances[k] = inst
			m.mu.Unlock()
		}
		return nil
	})
}

// Load implements [Store].
func (m *MemoryStore) Load(_ context.Context, process, key string) (Instance, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inst, ok := m.instances[instanceKey{process, key}]
	inst.State = slices.Clone(inst.State)
	return inst, ok, nil
}

func (m *MemoryStore) lock(ctx context.Context, k instanceKey) error { return m.locks.Lock(ctx, k) }

func (m *MemoryStore) unlock(k instanceKey) { m.locks.Unlock(k) }
