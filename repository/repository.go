package repository

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
)

// Repository is the port through which application code reads and writes
// aggregates of one type. The adapters [*Postgres], [*Memory] and
// [*EventStore] implement it; application services should depend on it (or on an
// interface of their own with the methods they use), not on an adapter.
type Repository[A aggregate.Aggregate] interface {
	// Load returns the aggregate with the given ID, its state read from
	// the store and its version restored. No aggregate with that ID gives
	// an error wrapping [aggregate.ErrNotFound].
	Load(ctx context.Context, id string) (A, error)

	// Save stores the aggregate's state and its uncommitted events in one
	// atomic step, provided the store still holds the version the
	// aggregate was loaded at ([aggregate.Root.CommittedVersion]);
	// otherwise it writes nothing and returns an [*aggregate.ConflictError].
	// A new aggregate (CommittedVersion 0) whose ID another aggregate of
	// the type has gets an [*aggregate.AlreadyExistsError] instead, which
	// is not a conflict: retrying cannot help. On success the aggregate is
	// marked committed.
	Save(ctx context.Context, a A) error

	// Update loads the aggregate, runs fn on it and saves it, as one
	// transaction. An error from fn is returned unchanged and nothing is
	// saved.
	Update(ctx context.Context, id string, fn func(A) error) error
}

// KeyLoader is implemented by repositories that can find an aggregate by
// one of its unique secondary keys (see [Mapping.Keys]); [*Postgres] and
// [*Memory] do.
type KeyLoader[A aggregate.Aggregate] interface {
	// LoadByKey returns the aggregate that holds the key name=value. None
	// gives an error wrapping [aggregate.ErrNotFound].
	LoadByKey(ctx context.Context, name, value string) (A, error)
}

// OutboxWriter writes events into an outbox inside a transaction the
// caller owns. *outbox.Store implements it; the PostgreSQL adapter calls it
// with the transaction that also writes the aggregate's state.
type OutboxWriter interface {
	Write(ctx context.Context, tx pgx.Tx, events ...aggregate.Envelope) error
}

// EventSink receives the events of a save in the [*Memory] adapter.
// *outbox.Memory implements it. Append is called while the save holds the
// repository's lock, so a sink sees each aggregate's events in version
// order; if it returns an error, the save fails and nothing is stored.
type EventSink interface {
	Append(ctx context.Context, events ...aggregate.Envelope) error
}

// ErrDuplicateKey reports a save that would give an aggregate a unique
// secondary key another aggregate of the same type already holds. The
// error returned is a [*DuplicateKeyError].
var ErrDuplicateKey = errors.New("repository: duplicate key")

// DuplicateKeyError says which key of which aggregate was taken. Nothing was
// saved. errors.Is(err, ErrDuplicateKey) holds for it.
//
// Its message names the key but not its value, which is often personal
// data (an email address) that must not end up in logs; the value is in
// Key.Value for code that needs it.
type DuplicateKeyError struct {
	Type string // aggregate type
	ID   string // the aggregate that was being saved
	Key  Key    // the key another aggregate holds
}

// Error returns "repository: duplicate key: <type> <id>: <key name> is
// taken by another <type>".
func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("repository: duplicate key: %s %s: %s is taken by another %s", e.Type, e.ID, e.Key.Name, e.Type)
}

// Is makes errors.Is(err, ErrDuplicateKey) true.
func (e *DuplicateKeyError) Is(target error) bool { return target == ErrDuplicateKey }

// Refusal returns true: a taken unique key is a business refusal, not a
// failure (cqrs.IsRefusal; the cqrs logging middleware logs it at INFO).
func (e *DuplicateKeyError) Refusal() bool { return true }

// errNilAggregate is returned for a nil aggregate instead of a panic.
var errNilAggregate = errors.New("repository: nil aggregate")

// rootOf returns a's root, or an error if a is nil (a nil pointer whose
// AggregateRoot would dereference nil).
func rootOf[A aggregate.Aggregate](a A) (r *aggregate.Root, err error) {
	defer func() {
		if recover() != nil {
			r, err = nil, errNilAggregate
		}
	}()
	r = a.AggregateRoot()
	if r == nil {
		return nil, errNilAggregate
	}
	return r, nil
}

// pendingEvents returns the aggregate's uncommitted events with the
// metadata of ctx filled into fields the events left empty, so events of an
// aggregate created before the repository saw the request still carry the
// request's correlation ID.
func pendingEvents(ctx context.Context, root *aggregate.Root) []aggregate.Envelope {
	events := root.Changes()
	md := aggregate.MetadataFromContext(ctx)
	if md.IsZero() {
		return events
	}
	for i := range events {
		events[i].Metadata = events[i].Metadata.Merge(md)
	}
	return events
}

// loadOptions returns the options a repository applies to an aggregate it
// loads: the configured ones, then the metadata of ctx, whose empty fields
// are filled from the metadata the configured options set.
func loadOptions(ctx context.Context, configured []aggregate.Option) []aggregate.Option {
	md := aggregate.MetadataFromContext(ctx)
	if md.IsZero() {
		return configured
	}
	opts := make([]aggregate.Option, len(configured), len(configured)+1)
	copy(opts, configured)
	return append(opts, func(r *aggregate.Root) {
		aggregate.WithMetadata(md.Merge(r.Metadata()))(r)
	})
}

// checkSave validates a before a save in a repository of aggregateType
// and returns its root.
func checkSave[A aggregate.Aggregate](a A, aggregateType string) (*aggregate.Root, error) {
	root, err := rootOf(a)
	if err != nil {
		return nil, err
	}
	if root.Type() != aggregateType {
		return nil, fmt.Errorf("repository: save: aggregate %q has type %q, this repository stores %q", root.ID(), root.Type(), aggregateType)
	}
	if root.ID() == "" {
		return nil, fmt.Errorf("repository: save %s: aggregate has no ID (call Init)", aggregateType)
	}
	return root, nil
}

// keysOf returns the aggregate's keys without empty values and duplicates.
func (m *Mapping[A]) keysOf(a A) []Key {
	if m.Keys == nil {
		return nil
	}
	keys := m.Keys(a)
	out := keys[:0:0]
	for _, k := range keys {
		if k.Value == "" || slices.Contains(out, k) {
			continue
		}
		out = append(out, k)
	}
	return out
}

// loadChangeSave loads the aggregate with the given ID inside tx, runs fn
// on it and saves it in tx; the PostgreSQL adapters implement it.
type loadChangeSave[A aggregate.Aggregate] func(ctx context.Context, tx pgx.Tx, id string, fn func(A) error) (A, error)

// update is the Update of the PostgreSQL adapters: each attempt runs step
// in a new transaction, commits, and marks the aggregate committed only
// after the commit; conflicts are retried as retry says.
func update[A aggregate.Aggregate](ctx context.Context, db Beginner, retry retryPolicy, aggregateType, id string, fn func(A) error, step loadChangeSave[A]) error {
	if fn == nil {
		return fmt.Errorf("repository: update %s %s: fn is nil", aggregateType, id)
	}
	return retry.run(ctx, "update "+aggregateType+" "+id, func(ctx context.Context) error {
		tx, err := db.Begin(ctx)
		if err != nil {
			return fmt.Errorf("repository: update %s %s: begin: %w", aggregateType, id, err)
		}
		defer rollback(ctx, tx)
		a, err := step(ctx, tx, id, fn)
		if err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return conflictOr(fmt.Errorf("repository: update %s %s: commit: %w", aggregateType, id, err), aggregateType, id, a.AggregateRoot().CommittedVersion())
		}
		aggregate.MarkCommitted(a)
		return nil
	})
}

// updateInTx is the UpdateTx of the PostgreSQL adapters: step in the
// caller's transaction, never retried; inside [Transact] the aggregate is
// marked committed after the commit.
func updateInTx[A aggregate.Aggregate](ctx context.Context, tx pgx.Tx, aggregateType, id string, fn func(A) error, step loadChangeSave[A]) error {
	if fn == nil {
		return fmt.Errorf("repository: update %s %s: fn is nil", aggregateType, id)
	}
	if tx == nil {
		return fmt.Errorf("repository: update %s %s: tx is nil", aggregateType, id)
	}
	a, err := step(ctx, tx, id, fn)
	if err != nil {
		return err
	}
	if tt, ok := tx.(*trackedTx); ok && a.AggregateRoot().HasChanges() {
		tt.track(a.AggregateRoot())
	}
	return nil
}

// writeFunc writes what a recorded after version base (state, keys and
// events, or just events) through tx; the PostgreSQL adapters implement it.
type writeFunc[A aggregate.Aggregate] func(ctx context.Context, tx pgx.Tx, root *aggregate.Root, a A, base int64) error

// save is the Save of the PostgreSQL adapters: write in a transaction of its
// own, mark committed after the commit. Without uncommitted events nothing
// is written.
func save[A aggregate.Aggregate](ctx context.Context, db Beginner, aggregateType string, a A, write writeFunc[A]) error {
	root, err := checkSave(a, aggregateType)
	if err != nil {
		return err
	}
	if !root.HasChanges() {
		return nil
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("repository: save %s %s: begin: %w", aggregateType, root.ID(), err)
	}
	defer rollback(ctx, tx)
	if err := write(ctx, tx, root, a, root.CommittedVersion()); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return conflictOr(fmt.Errorf("repository: save %s %s: commit: %w", aggregateType, root.ID(), err), aggregateType, root.ID(), root.CommittedVersion())
	}
	aggregate.MarkCommitted(root)
	return nil
}

// saveInTx is the SaveTx of the PostgreSQL adapters. Inside [Transact] an
// aggregate may be saved more than once: each save writes only what came
// after the previous one, and Transact marks it committed after the commit.
func saveInTx[A aggregate.Aggregate](ctx context.Context, tx pgx.Tx, aggregateType string, a A, write writeFunc[A]) error {
	root, err := checkSave(a, aggregateType)
	if err != nil {
		return err
	}
	if tx == nil {
		return fmt.Errorf("repository: save %s %s: tx is nil", aggregateType, root.ID())
	}
	tt, tracked := tx.(*trackedTx)
	base := root.CommittedVersion()
	if tracked {
		if v, ok := tt.saved[root]; ok {
			base = v
		}
	}
	if base == root.Version() {
		return nil
	}
	if err := write(ctx, tx, root, a, base); err != nil {
		return err
	}
	if tracked {
		tt.track(root)
	}
	return nil
}
