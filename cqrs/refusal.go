package cqrs

import (
	"errors"
	"log/slog"

	"github.com/dddkit/dddkit/aggregate"
)

// Refuse marks err as a refusal: [IsRefusal] reports true for it and for
// every error that wraps it. errors.Is and errors.As see err through it,
// and its message is err's. Refuse(nil) is nil.
//
// Domain packages that should not import cqrs can give their error types a
// method Refusal() bool instead; see [IsRefusal].
func Refuse(err error) error {
	if err == nil {
		return nil
	}
	return &refusal{err: err}
}

type refusal struct{ err error }

func (r *refusal) Error() string { return r.err.Error() }
func (r *refusal) Unwrap() error { return r.err }
func (r *refusal) Refusal() bool { return true }

// IsRefusal reports whether err is a refusal rather than a failure. It is
// decided by the first error in err's tree (in the order errors.As visits
// it) that has a method
//
//	Refusal() bool
//
// and, when no error in the tree has one, by whether err matches
// [aggregate.ErrNotFound] or [aggregate.ErrAlreadyExists]. Errors made by
// [Refuse], a [*ValidationError] and valueobject's *Error have the method
// and return true; an error type can return false to mark a wrapped refusal
// as a failure (a row that must exist but was not found). A concurrency
// conflict is not a refusal (it is retried, and logged at WARN); nil is not
// a refusal.
func IsRefusal(err error) bool {
	if err == nil {
		return false
	}
	var r interface{ Refusal() bool }
	if errors.As(err, &r) {
		return r.Refusal()
	}
	return errors.Is(err, aggregate.ErrNotFound) || errors.Is(err, aggregate.ErrAlreadyExists)
}

// logLevel returns the log level for the outcome of a dispatch that
// returned err, the rule [Logging] applies: [slog.LevelDebug] for nil (success),
// [slog.LevelInfo] for a refusal ([IsRefusal]), [slog.LevelWarn] for an
// error matching [aggregate.ErrConcurrencyConflict] (a race lost even
// after any retries) and [slog.LevelError] for every other failure.
func logLevel(err error) slog.Level {
	switch {
	case err == nil:
		return slog.LevelDebug
	case IsRefusal(err):
		return slog.LevelInfo
	case errors.Is(err, aggregate.ErrConcurrencyConflict):
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}
