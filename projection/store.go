package projection

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Checkpoint is what a [Store] keeps per projection: how far it has
// applied the event-store stream, and its status.
type Checkpoint struct {
	// Position is the stream position of the last event applied (0:
	// none).
	Position int64
	// Applied counts the events applied since the last reset.
	Applied int64
	// LastEventAt is when the store recorded the last event applied
	// (zero: none).
	LastEventAt time.Time
	// LastError is the last error that stopped a batch or an event (""
	// when the last attempt succeeded); LastErrorAt is when it happened.
	LastError   string
	LastErrorAt time.Time
	// Rebuilding is set by a reset and cleared when the replay has
	// reached RebuildTarget, the stream's head at the reset.
	Rebuilding    bool
	RebuildTarget int64
	// UpdatedAt is when the checkpoint was last saved.
	UpdatedAt time.Time
}

// Store keeps the checkpoints of projections and runs a batch in one
// transaction with the read model's writes. Two adapters implement it:
// the PostgreSQL store of package [github.com/dddkit/dddkit/postgres]
// (its transactions are units of work that the read model's SQL joins
// through postgres.TxFromContext) and [MemoryStore]. Both pass the
// shared suite of package projectiontest.
type Store interface {
	// Do runs fn in one transaction: a Load and Save made with the ctx
	// fn gets, and the read model's writes, commit together when fn
	// returns nil, and none of them when it returns an error (returned
	// as it is).
	Do(ctx context.Context, fn func(ctx context.Context) error) error

	// Load returns the checkpoint of projection name (the zero
	// Checkpoint when it has none). Inside Do it locks the checkpoint
	// until the transaction ends, so that two runners of one projection
	// never apply the same batch.
	Load(ctx context.Context, name string) (Checkpoint, error)

	// Save stores cp as the checkpoint of projection name, in the
	// transaction of ctx when there is one.
	Save(ctx context.Context, name string, cp Checkpoint) error
}

// MemoryStore is a [Store] in memory, for the embedded mode and tests.
// Its transactions are serialised (one at a time). An in-memory read
// model that must roll back with the checkpoint stages its writes with
// [OnCommit]; writes made directly are kept even when the batch fails,
// so a handler of an in-memory read model should then be idempotent.
//
// The zero value is not usable; create one with [NewMemoryStore].
type MemoryStore struct {
	mu  sync.Mutex // held by a transaction
	cps map[string]Checkpoint
	now func() time.Time
}

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{cps: make(map[string]Checkpoint), now: time.Now}
}

var _ Store = (*MemoryStore)(nil)

type memTxKey struct{}

// memTx is a transaction of a MemoryStore.
type memTx struct {
	store    *MemoryStore
	cps      map[string]Checkpoint // staged saves
	onCommit []func()
}

// OnCommit makes fn run when the transaction of ctx commits, and not at
// all when it rolls back: an in-memory read model stages its writes with
// it. Without a transaction of a [MemoryStore] in ctx (a handler run by
// another store or inbox), fn runs at once.
func OnCommit(ctx context.Context, fn func()) {
	if tx, ok := ctx.Value(memTxKey{}).(*memTx); ok {
		tx.onCommit = append(tx.onCommit, fn)
		return
	}
	fn()
}

// Do implements [Store].
func (m *MemoryStore) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	if fn == nil {
		return errors.New("projection: MemoryStore.Do: nil function")
	}
	if tx, ok := ctx.Value(memTxKey{}).(*memTx); ok && tx.store == m {
		return fn(ctx) // joins the outer transaction
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tx := &memTx{store: m, cps: make(map[string]Checkpoint)}
	if err := fn(context.WithValue(ctx, memTxKey{}, tx)); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("projection: commit: %w", err)
	}
	for name, cp := range tx.cps {
		m.cps[name] = cp
	}
	for _, f := range tx.onCommit {
		f()
	}
	return nil
}

// Load implements [Store].
func (m *MemoryStore) Load(ctx context.Context, name string) (Checkpoint, error) {
	if tx, ok := ctx.Value(memTxKey{}).(*memTx); ok && tx.store == m {
		if cp, ok := tx.cps[name]; ok {
			return cp, nil
		}
		return m.cps[name], nil // the lock is held
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cps[name], nil
}

// Save implements [Store].
func (m *MemoryStore) Save(ctx context.Context, name string, cp Checkpoint) error {
	if name == "" {
		return errors.New("projection: MemoryStore.Save: empty name")
	}
	cp.UpdatedAt = m.now()
	if tx, ok := ctx.Value(memTxKey{}).(*memTx); ok && tx.store == m {
		tx.cps[name] = cp
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cps[name] = cp
	return nil
}
