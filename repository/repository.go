package repository

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/aggregate"
)

// Repository is the port through which application code reads and writes
// aggregates of one type. [*Memory] implements it, and so do the
// PostgreSQL adapters of package github.com/dddkit/dddkit/postgres
// (postgres.Repository for state-stored aggregates, postgres.EventStore for
// event-sourced ones); application services should depend on it (or on an
// interface of their own with the methods they use), not on an adapter.
//
// Inside a unit of work (postgres.UnitOfWork.Do, or the cqrs.Transaction
// middleware around a command handler) the PostgreSQL adapters join its
// transaction: Save and Update write in it, their events go to the outbox
// in it, and the aggregates are marked committed only when it commits.
// On a pool they hold back the write of a save without unique keys and
// send it with the unit's next statement or with its COMMIT, in one
// round trip: its conflict (or taken ID) is then returned by that
// statement or by the unit (Do, and the command), not by Save. Return
// Save's error and let the unit's decide, as cqrs.Retry does; to act on
// it inside the unit, call postgres.Flush after Save.
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
	// transaction (the unit of work's, when ctx carries one). An error from
	// fn is returned unchanged and nothing is saved.
	Update(ctx context.Context, id string, fn func(A) error) error
}

// KeyLoader is implemented by repositories that can find an aggregate by
// one of its unique secondary keys (see [Mapping.Keys]); [*Memory] and
// postgres.Repository do.
type KeyLoader[A aggregate.Aggregate] interface {
	// LoadByKey returns the aggregate that holds the key name=value. None
	// gives an error wrapping [aggregate.ErrNotFound].
	LoadByKey(ctx context.Context, name, value string) (A, error)
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
