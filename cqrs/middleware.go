package cqrs

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"
)

// Logging returns a middleware that logs every dispatch to logger (nil means
// [slog.Default]) with the attributes "kind", "name", "duration" and, on
// failure, "error". A success is logged at [slog.LevelDebug], a
// [*ValidationError] at [slog.LevelWarn] (the caller sent bad input), any
// other error at [slog.LevelError]. When the level is disabled the
// middleware costs one clock reading.
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
			level := slog.LevelDebug
			switch {
			case err == nil:
			case errors.Is(err, ErrValidation):
				level = slog.LevelWarn
			default:
				level = slog.LevelError
			}
			if !logger.Enabled(ctx, level) {
				return res, err
			}
			if err == nil {
				logger.LogAttrs(ctx, level, logMessage(msg.Kind, true),
					slog.String("kind", msg.Kind.String()),
					slog.String("name", msg.Name),
					slog.Duration("duration", d))
			} else {
				logger.LogAttrs(ctx, level, logMessage(msg.Kind, false),
					slog.String("kind", msg.Kind.String()),
					slog.String("name", msg.Name),
					slog.Duration("duration", d),
					slog.Any("error", err))
			}
			return res, err
		}
	}
}

func logMessage(k Kind, ok bool) string {
	switch {
	case k == KindCommand && ok:
		return "cqrs: command handled"
	case k == KindCommand:
		return "cqrs: command failed"
	case k == KindQuery && ok:
		return "cqrs: query handled"
	case k == KindQuery:
		return "cqrs: query failed"
	case ok:
		return "cqrs: message handled"
	default:
		return "cqrs: message failed"
	}
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
					res, err = nil, &PanicError{Kind: msg.Kind, Name: msg.Name, Value: v, Stack: debug.Stack()}
				}
			}()
			return next(ctx, msg)
		}
	}
}

// BeginFunc starts a unit of work around one handler call, for [Around]: a
// database transaction, a tracing span, a metrics timer. It returns the
// context the handler should run with (carrying the transaction or span)
// and a finish function, or an error that stops the dispatch before the
// handler runs.
//
// finish is called exactly once with the handler's error (nil on success)
// and returns the error the caller gets: a transaction commits on nil and
// rolls back otherwise, returning the commit error if commit fails; a span
// records the error, ends and returns it unchanged. If the handler panics,
// finish is called with an error wrapping [ErrPanic] and the panic then
// continues, so a transaction is rolled back even when the panic is
// recovered further out by [Recover].
type BeginFunc func(ctx context.Context, msg Message) (_ context.Context, finish func(err error) error, _ error)

// Around returns a middleware that brackets every handler call with begin
// and its finish function; see [BeginFunc]. It is the hook for transactions
// and tracing, for example (with a caller-defined txKey and pgx):
//
//	tx := cqrs.Around(func(ctx context.Context, msg cqrs.Message) (context.Context, func(error) error, error) {
//		tx, err := pool.Begin(ctx)
//		if err != nil {
//			return nil, nil, err
//		}
//		return context.WithValue(ctx, txKey{}, tx), func(err error) error {
//			if err != nil {
//				_ = tx.Rollback(ctx)
//				return err
//			}
//			return tx.Commit(ctx)
//		}, nil
//	})
//
// and, with OpenTelemetry:
//
//	trace := cqrs.Around(func(ctx context.Context, msg cqrs.Message) (context.Context, func(error) error, error) {
//		ctx, span := tracer.Start(ctx, msg.Kind.String()+" "+msg.Name)
//		return ctx, func(err error) error {
//			if err != nil {
//				span.RecordError(err)
//				span.SetStatus(codes.Error, err.Error())
//			}
//			span.End()
//			return err
//		}, nil
//	})
//
// Any [Middleware] can do the same; Around only saves the boilerplate and
// gets the panic case right. Put a transaction inside [Retry], so that every
// attempt runs in a fresh transaction.
func Around(begin BeginFunc) Middleware {
	return func(next HandlerFunc) HandlerFunc {
		return func(ctx context.Context, msg Message) (any, error) {
			hctx, finish, err := begin(ctx, msg)
			if err != nil {
				return nil, err
			}
			if hctx == nil {
				hctx = ctx
			}
			if finish == nil {
				return next(hctx, msg)
			}
			done := false
			defer func() {
				if !done { // the handler panicked (or called runtime.Goexit)
					_ = finish(&PanicError{Kind: msg.Kind, Name: msg.Name, Value: "handler did not return (panic or runtime.Goexit)"})
				}
			}()
			res, err := next(hctx, msg)
			done = true
			return res, finish(err)
		}
	}
}
