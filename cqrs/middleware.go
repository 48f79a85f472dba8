package cqrs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"
)

// Logging returns a middleware that logs the outcome of every dispatch to
// logger (nil means [slog.Default]) with the attributes "kind", "name",
// "duration" and, unless it succeeded, "error". The level follows the
// outcome:
//
//   - success: [slog.LevelDebug], message "cqrs: command handled";
//   - a refusal ([IsRefusal]: invalid input, a business rule that says no,
//     not found, already exists): [slog.LevelInfo], "cqrs: command refused";
//   - a concurrency conflict that outlived any retries:
//     [slog.LevelWarn], "cqrs: command failed";
//   - any other error, panics included: [slog.LevelError], "cqrs: command
//     failed".
//
// (and likewise "query ..." for queries). Logging never logs the payload:
// the fields of a command or query (an email address, a password) stay out
// of the log; only its name does. The error's message is logged, so error
// types should not put personal data in their messages (dddkit's do not).
// When the level is disabled the middleware costs one clock reading.
//
// Put it first, so that it sees the errors of every middleware inside it,
// including [Recover]'s.
func Logging(logger *slog.Logger) Middleware {
	if logger == nil {
		logger = slog.Default()
	}
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg Message) (any, error) {
			start := time.Now()
			res, err := next(ctx, msg)
			d := time.Since(start)
			level := logLevel(err)
			if !logger.Enabled(ctx, level) {
				return res, err
			}
			if err == nil {
				logger.LogAttrs(ctx, level, logMessage(msg.Kind, outcomeHandled),
					slog.String("kind", msg.Kind.String()),
					slog.String("name", msg.Name),
					slog.Duration("duration", d))
			} else {
				outcome := outcomeFailed
				if level == slog.LevelInfo {
					outcome = outcomeRefused
				}
				logger.LogAttrs(ctx, level, logMessage(msg.Kind, outcome),
					slog.String("kind", msg.Kind.String()),
					slog.String("name", msg.Name),
					slog.Duration("duration", d),
					slog.Any("error", err))
			}
			return res, err
		}
	}
}

type outcome uint8

const (
	outcomeHandled outcome = iota
	outcomeRefused
	outcomeFailed
)

var logMessages = [...][3]string{
	{"cqrs: message handled", "cqrs: message refused", "cqrs: message failed"},
	KindCommand: {"cqrs: command handled", "cqrs: command refused", "cqrs: command failed"},
	KindQuery:   {"cqrs: query handled", "cqrs: query refused", "cqrs: query failed"},
}

func logMessage(k Kind, o outcome) string {
	if int(k) >= len(logMessages) {
		k = 0
	}
	return logMessages[k][o]
}

// Validation returns a middleware that, if the payload has a method
//
//	Validate() error
//
// calls it before the handler and, when it fails, returns a
// [*ValidationError] without calling the handler: errors.Is(err,
// [ErrValidation]) holds and errors.As reaches the error Validate returned.
// Payloads without the method pass unchecked. The method must be in the
// method set of the dispatched type: declare it on the value receiver for a
// command sent by value (a Validate on *T is not seen when T is sent).
//
// Validation is for the shape of the input (required fields, formats,
// ranges); rules that need state belong in the aggregate.
func Validation() Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg Message) (any, error) {
			if v, ok := msg.Payload.(interface{ Validate() error }); ok {
				if err := v.Validate(); err != nil {
					return nil, &ValidationError{Kind: msg.Kind, Name: msg.Name, Err: err}
				}
			}
			return next(ctx, msg)
		}
	}
}

// Recover returns a middleware that turns a panic in the handler, or in any
// middleware inside it, into a [*PanicError] carrying the panic value and
// the stack; errors.Is(err, [ErrPanic]) holds. Every panic value is
// recovered; runtime.Goexit is not a panic and is not stopped.
//
// Place it near the outside of the chain (just inside [Logging]) so that it
// covers the other middlewares.
func Recover() Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg Message) (res any, err error) {
			defer func() {
				if v := recover(); v != nil {
					res, err = nil, &PanicError{Kind: msg.Kind, Name: msg.Name, Value: v, Stack: string(debug.Stack())}
				}
			}()
			return next(ctx, msg)
		}
	}
}

// UnitOfWork runs fn in one transaction: it begins it, runs fn with a
// context that carries it, commits when fn returns nil and rolls back when
// fn returns an error (or panics), returning that error. A call of Do made
// inside fn's context joins the transaction already running instead of
// opening a second one. postgres.UnitOfWork implements it; repositories,
// the outbox and the inbox find the transaction in the context.
type UnitOfWork interface {
	Do(ctx context.Context, fn func(ctx context.Context) error) error
}

// Transaction returns a middleware that runs every command handler inside
// uow.Do, so that everything the handler writes through the context it gets
// (any number of aggregates, their outbox rows, the caller's own SQL)
// commits together or not at all. An error from the handler rolls the
// transaction back and is returned unchanged, unless the handler wrapped
// it in [KeepChanges] (then the transaction commits and the error is
// returned after); an error from committing is
// returned instead of the handler's result. Queries pass through untouched,
// so the middleware may sit in [Config.QueryMiddleware] too without
// effect. A nil uow makes every command fail with an error saying so.
//
// Order: put Transaction inside [Retry], so that each attempt runs in a
// fresh transaction (a transaction that lost a race is rolled back before
// the next attempt loads the aggregate again), and inside [Logging] and
// [Recover], so that they see the outcome of the commit:
//
//	CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger), cqrs.Recover(), cqrs.Validation(), retry, cqrs.Transaction(uow)}
func Transaction(uow UnitOfWork) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg Message) (any, error) {
			if msg.Kind != KindCommand {
				return next(ctx, msg)
			}
			if uow == nil {
				return nil, fmt.Errorf("cqrs: %s %s: Transaction has a nil UnitOfWork", msg.Kind, msg.Name)
			}
			var (
				res  any
				kept *keptError
			)
			err := uow.Do(ctx, func(ctx context.Context) error {
				var err error
				res, err = next(ctx, msg)
				if errors.As(err, &kept) {
					return nil // commit what the handler wrote, then refuse
				}
				return err
			})
			if err != nil {
				return nil, err
			}
			if kept != nil {
				return nil, kept.err
			}
			return res, nil
		}
	}
}

// KeepChanges wraps err, the error of a command handler whose writes must
// be committed all the same: a request that is refused but must leave a
// trace, such as a wrong one-time code that counts against the limit of
// tries. The [Transaction] middleware commits the unit of work and then
// returns err itself (a failed commit is returned instead). Without
// Transaction the wrapper is transparent: errors.Is, errors.As and
// [IsRefusal] see err through it, and its message is err's. KeepChanges(nil)
// is nil.
func KeepChanges(err error) error {
	if err == nil {
		return nil
	}
	return &keptError{err: err}
}

// keptError is the error of [KeepChanges].
type keptError struct{ err error }

func (e *keptError) Error() string { return e.err.Error() }
func (e *keptError) Unwrap() error { return e.err }
