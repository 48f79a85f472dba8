package aggregate

import (
	"errors"
	"fmt"
)

// ErrConcurrencyConflict reports that an aggregate was changed by someone
// else between load and save: the version the writer started from is no
// longer the stored one. Nothing was written. Re-running the whole
// load → change → save cycle usually succeeds; the cqrs retry middleware does
// exactly that.
//
// It lives here, in the dependency-free domain package, so that repositories
// can return it and the cqrs package can recognise it without importing each
// other.
var ErrConcurrencyConflict = errors.New("aggregate: concurrency conflict")

// ErrNotFound reports that no aggregate with the requested ID exists.
var ErrNotFound = errors.New("aggregate: not found")

// ErrAlreadyExists reports a save of a new aggregate whose ID is already
// taken. Unlike a concurrency conflict, re-running the command cannot fix
// it.
var ErrAlreadyExists = errors.New("aggregate: already exists")

// ErrNotInitialized is returned by [Root.Record] and [Root.Load] when the
// root has no ID, type or apply function; see [Root.Init].
var ErrNotInitialized = errors.New("aggregate: root not initialized (call Init first)")

// ConflictError is the detailed form of [ErrConcurrencyConflict]: which
// aggregate, the version the writer expected to find and, when the store
// knows it, the version it found. errors.Is(err, ErrConcurrencyConflict)
// holds for it.
type ConflictError struct {
	Type     string // aggregate type, e.g. "user"
	ID       string // aggregate ID
	Expected int64  // version the writer loaded
	Actual   int64  // version found in the store; -1 when unknown
}

func (e *ConflictError) Error() string {
	if e.Actual < 0 {
		return fmt.Sprintf("aggregate: concurrency conflict on %s %s: expected version %d, found a different one", e.Type, e.ID, e.Expected)
	}
	return fmt.Sprintf("aggregate: concurrency conflict on %s %s: expected version %d, found %d", e.Type, e.ID, e.Expected, e.Actual)
}

// Is makes errors.Is(err, ErrConcurrencyConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConcurrencyConflict }
