package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// What Repository and EventStore share: Save and Update on a unit of work.

// writeFunc writes a's state and the events it recorded after version
// base with q, in one round trip: one statement, or one batch of
// statements sent together. A write that fails changes nothing that
// commits: a conflict either makes the statement write nothing or makes
// it fail. inTx is false when q runs the write in PostgreSQL's implicit
// transaction (one for the statement or batch, committed when it
// succeeds, rolled back when it fails), true when q is a transaction
// that a failed statement leaves aborted.
type writeFunc[A aggregate.Aggregate] func(ctx context.Context, q DB, inTx bool, root *aggregate.Root, a A, base int64) error

// save writes a in the unit of work of ctx, or on its own.
//
// On its own, the write runs in PostgreSQL's implicit transaction: the
// version-checked write of the aggregate, its outbox rows and the
// commit are one round trip, where BEGIN, the writes and COMMIT would
// take four. Given a pgx.Tx as DB, it runs in a savepoint, so that a
// failed save leaves the caller's transaction usable.
func save[A aggregate.Aggregate](ctx context.Context, db DB, aggregateType string, a A, write writeFunc[A]) (err error) {
	root, err := aggstore.CheckSave(a, aggregateType)
	if err != nil {
		return err
	}
	if !root.HasChanges() {
		return nil
	}
	if u := unitFrom(ctx); u != nil {
		return saveInUnit(ctx, u, aggregateType, root, a, write)
	}
	ctx, span := aggstore.StartSave(ctx, aggregateType, root)
	defer func() { telemetry.End(span, err) }()
	base := root.CommittedVersion()
	if _, inTx := db.(pgx.Tx); !inTx {
		if err := write(ctx, db, false, root, a, base); err != nil {
			return conflictOr(err, aggregateType, root.ID(), base)
		}
		aggregate.MarkCommitted(a, root.Version())
		return nil
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer rollback(ctx, tx)
	if err := write(ctx, tx, true, root, a, base); err != nil {
		return conflictOr(err, aggregateType, root.ID(), base)
	}
	if err := tx.Commit(ctx); err != nil {
		return commitError(err)
	}
	aggregate.MarkCommitted(a, root.Version())
	return nil
}

// saveInUnit writes what root recorded since it was last written in u.
// Aggregates are marked committed when u commits, up to the version last
// written in u. A failed write makes u roll back: the state may be
// written without its events (or its keys), and nothing may be
// half-saved.
func saveInUnit[A aggregate.Aggregate](ctx context.Context, u *unit, aggregateType string, root *aggregate.Root, a A, write writeFunc[A]) (err error) {
	base, seen := u.saved[root]
	if !seen {
		base = root.CommittedVersion()
	}
	if base == root.Version() {
		return nil
	}
	ctx, span := aggstore.StartSave(ctx, aggregateType, root)
	defer func() { telemetry.End(span, err) }()
	if err := write(ctx, u.tx, true, root, a, base); err != nil {
		u.failed = true
		return conflictOr(err, aggregateType, root.ID(), base)
	}
	if u.saved == nil {
		u.saved = make(map[any]int64)
	}
	u.saved[root] = root.Version()
	if !seen {
		// Marked at the version last written in u when u commits
		// (u.saved then): events recorded after it, or saved in a
		// savepoint rolled back since, stay uncommitted.
		u.afterCommit = append(u.afterCommit, func() { aggregate.MarkCommitted(a, u.saved[root]) })
	}
	return nil
}

// update runs load → fn → save in the unit of work of ctx. Without one,
// each attempt (retried on conflicts by retry) loads with a read of its
// own and saves on its own, in one round trip, unless lock asks for the
// row lock of a load FOR UPDATE: then the attempt runs in a unit of its
// own that holds the lock until the save commits.
func update[A aggregate.Aggregate](ctx context.Context, db DB, retry aggstore.Retry, lock bool, aggregateType, id string, fn func(A) error,
	load func(ctx context.Context, q DB, id string, forUpdate bool) (A, error), write writeFunc[A]) error {
	if fn == nil {
		return fmt.Errorf("repository: update %s %s: fn is nil", aggregateType, id)
	}
	apply := func(ctx context.Context, q DB, save func(a A, root *aggregate.Root) error) error {
		a, err := load(ctx, q, id, true)
		if err != nil {
			return conflictOr(err, aggregateType, id, -1)
		}
		if err := fn(a); err != nil {
			return err
		}
		root := a.AggregateRoot()
		if !root.HasChanges() {
			return nil
		}
		return save(a, root)
	}
	inUnit := func(ctx context.Context) error {
		u := unitFrom(ctx)
		return apply(ctx, u.tx, func(a A, root *aggregate.Root) error {
			return saveInUnit(ctx, u, aggregateType, root, a, write)
		})
	}
	if unitFrom(ctx) != nil {
		return inUnit(ctx)
	}
	// Optimistic concurrency checks the version at save, so a load
	// outside the save's transaction is as safe as one inside it.
	attempt := func(ctx context.Context) error {
		return apply(ctx, db, func(a A, _ *aggregate.Root) error { return save(ctx, db, aggregateType, a, write) })
	}
	if lock {
		attempt = func(ctx context.Context) error { return run(ctx, db, inUnit) }
	}
	return retry.Run(ctx, "update "+aggregateType+" "+id, attempt)
}

// conflictOr turns PostgreSQL's serialization failures and deadlocks
// into a concurrency conflict (worth retrying) and returns other errors
// as they are.
func conflictOr(err error, typ, id string, expected int64) error {
	if err == nil || !isSerializationFailure(err) {
		return err
	}
	var ce *aggregate.ConflictError
	if errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("%w: %w", &aggregate.ConflictError{Type: typ, ID: id, Expected: expected, Actual: -1}, err)
}

// isSerializationFailure reports a serialization failure (40001) or a
// deadlock (40P01): the transaction lost a race and may succeed when run
// again.
func isSerializationFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}
