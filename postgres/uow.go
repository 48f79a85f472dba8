package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
)

// ErrRollbackOnly is returned by the outermost [UnitOfWork.Do] when a
// nested Do failed but the function around it returned nil: the work of
// the failed part is in the transaction too, so the unit rolls back
// rather than commit half of it.
var ErrRollbackOnly = errors.New("postgres: unit of work rolled back: a nested unit failed")

// UnitOfWork runs a function in one PostgreSQL transaction that every
// adapter of this package joins: repositories (any number of aggregates),
// the outbox rows of their events, the inbox row of the event being
// handled, and the caller's own statements ([TxFromContext]), for
// example a River job inserted with InsertTx.
//
// The zero value is not usable; create one with [NewUnitOfWork]. A
// UnitOfWork is safe for concurrent use: each Do has its own transaction.
type UnitOfWork struct {
	db DB
}

// NewUnitOfWork returns a UnitOfWork whose transactions begin on db.
func NewUnitOfWork(db DB) (*UnitOfWork, error) {
	if db == nil {
		return nil, errors.New("postgres: NewUnitOfWork: nil DB")
	}
	return &UnitOfWork{db: db}, nil
}

// Do runs fn in a transaction and commits it when fn returns nil; it
// rolls back when fn returns an error or panics, and returns fn's error
// unchanged (so errors.Is and errors.As see the caller's error).
//
// The context passed to fn carries the transaction. A repository call,
// outbox write or inbox check made with it joins the transaction; it
// never opens a second one. [TxFromContext] returns the transaction for
// the caller's own SQL. On a *pgxpool.Pool the transaction begins with
// its first statement, in that statement's round trip (see the package
// documentation); a unit that runs no statement takes no connection and
// sends nothing.
//
// When ctx already carries a unit of work, Do joins it: fn runs in the
// same transaction, nothing is committed until the outermost Do returns,
// and a failure of fn marks the whole unit rollback-only (see
// [ErrRollbackOnly]).
//
// Aggregates saved in the unit are marked committed only after the
// transaction commits, each up to the version its last save in the unit
// wrote: events recorded after that save stay uncommitted, for the next
// save. After a rollback they keep their uncommitted events, so a retry
// of the whole command starts from a clean slate (load them again).
//
// A savepoint begun on the unit's transaction (its Begin, or
// [pgx.BeginFunc] on it) undoes, when it rolls back, what the unit
// recorded of the saves made in it, along with their rows: those
// aggregates are not marked committed, saving one again writes it again,
// and a save (or nested Do) that failed inside it no longer makes the
// unit roll back. A savepoint taken by SQL of the caller's own (SAVEPOINT
// statements) is not seen.
func (u *UnitOfWork) Do(ctx context.Context, fn func(ctx context.Context) error) (err error) {
	if fn == nil {
		return errors.New("postgres: UnitOfWork.Do: nil function")
	}
	if outer := unitFrom(ctx); outer != nil {
		ok := false
		defer func() {
			if !ok { // fn failed or panicked
				outer.failed = true
			}
		}()
		err = fn(ctx)
		ok = err == nil
		return err
	}
	return run(ctx, u.db, fn)
}

// run begins a transaction on db, runs fn with a context carrying it and
// commits it.
func run(ctx context.Context, db DB, fn func(ctx context.Context) error) error {
	tx, notify, err := beginUnit(ctx, db)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	un := &unit{tx: tx, notify: notify}
	if t, ok := tx.(*lazyTx); ok {
		t.unit = un
	} else {
		un.tx = &unitTx{Tx: tx, u: un}
	}
	defer func() {
		if !un.done {
			rollback(ctx, tx)
		}
	}()
	if err := fn(context.WithValue(ctx, unitKey{}, un)); err != nil {
		return err
	}
	if un.failed {
		return ErrRollbackOnly
	}
	un.done = true
	if err := tx.Commit(ctx); err != nil {
		if held, ok := errors.AsType[*heldError](err); ok {
			// A statement the unit held back for the commit's round trip
			// (a save, queued writes) failed: its error is the unit's.
			return held.err
		}
		return commitError(err)
	}
	un.notified()
	for _, f := range un.afterCommit {
		f()
	}
	return nil
}

// Flush sends the writes the unit of work in ctx holds back for its
// COMMIT (see [UnitOfWork]) and returns their error: a save's
// [*aggregate.ConflictError] or [*aggregate.AlreadyExistsError], or a
// queued statement's. Call it after a Save whose error the function acts
// on inside the unit, such as turning an ID already taken into an error
// of its domain; the unit's next statement flushes them too. Without a
// unit in ctx, or with nothing held back, it does nothing. After a held
// write failed, Flush returns that error, and the unit rolls back.
func Flush(ctx context.Context) error {
	u := unitFrom(ctx)
	if u == nil {
		return nil
	}
	if t, ok := u.tx.(*lazyTx); ok {
		return t.ready(ctx)
	}
	return nil
}

// commitError wraps a failed commit; a serialization failure or deadlock
// becomes a concurrency conflict, worth retrying.
func commitError(err error) error {
	if isSerializationFailure(err) {
		return fmt.Errorf("postgres: commit: %w: %w", aggregate.ErrConcurrencyConflict, err)
	}
	return fmt.Errorf("postgres: commit: %w", err)
}

// TxFromContext returns the transaction of the unit of work in ctx, for
// the caller's own statements inside [UnitOfWork.Do] (or inside an inbox
// handler, which runs in a unit of work). The second result is false
// when ctx carries none. On a *pgxpool.Pool, a unit whose first statement
// is the caller's begins its transaction with it when that statement is
// an Exec with arguments, a Query, a QueryRow or a SendBatch; before it
// runs CopyFrom, Prepare, Begin (a savepoint), LargeObjects, Conn or an
// Exec without arguments, the transaction begins on its own. If it
// cannot begin, LargeObjects returns large objects whose calls fail with
// pgx.ErrTxClosed and Conn returns nil.
func TxFromContext(ctx context.Context) (pgx.Tx, bool) {
	if u := unitFrom(ctx); u != nil {
		return u.tx, true
	}
	return nil, false
}

type unitKey struct{}

// unit is the state of one unit of work, stored in its context.
type unit struct {
	tx          pgx.Tx
	failed      bool     // a nested Do failed: never commit
	done        bool     // committed (or committing): no rollback
	afterCommit []func() // run in order after a successful commit
	// saved maps what a repository saved in this unit (by the aggregate's
	// root pointer) to the version it wrote, so that saving the same
	// aggregate twice writes only the events recorded since.
	saved map[any]int64
	// notify is the pool on which the unit notifies the readers of what
	// it wrote (notifyKeys) after commit (notify.go); nil when the
	// triggers do.
	notify     DB
	notifyKeys []notifierKey
}

// unitMark is what the rollback of a savepoint restores of its unit:
// the saves recorded before it began, and whether a write had failed.
type unitMark struct {
	saved       map[any]int64
	afterCommit int
	failed      bool
}

func (u *unit) mark() unitMark {
	return unitMark{saved: maps.Clone(u.saved), afterCommit: len(u.afterCommit), failed: u.failed}
}

// rollbackTo forgets what u recorded since m: the writes it stands for
// were rolled back with their savepoint.
func (u *unit) rollbackTo(m unitMark) {
	u.saved, u.afterCommit, u.failed = m.saved, u.afterCommit[:m.afterCommit], m.failed
}

func unitFrom(ctx context.Context) *unit {
	u, _ := ctx.Value(unitKey{}).(*unit)
	return u
}
