package eventbus

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/retry"
)

// errShutdown marks a failure that happened because the router is
// stopping (the message's context ended). Such a message is not
// dead-lettered but left unacknowledged, so it is delivered again.
var errShutdown = errors.New("eventbus: consumer stopping")

// retryMiddleware runs the handler up to p.MaxAttempts times with
// jittered exponential backoff, as [RouterConfig.Retry] describes:
// permanent errors are returned at once, unavailable ones are retried
// without counting. p must have its defaults filled in. When the attempts
// are used up it returns a [*retry.Error] wrapping the last error.
func retryMiddleware(logger *slog.Logger, p retry.Policy, handler string) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			ctx := msg.Context()
			attempts := 0 // failures that count against MaxAttempts
			for streak := 1; ; streak++ {
				out, err := h(msg)
				if err == nil {
					return out, nil
				}
				if ctx.Err() != nil {
					return nil, fmt.Errorf("%w: %w", errShutdown, err)
				}
				if permanent(err) {
					return nil, err
				}
				unavailable := errors.Is(err, ErrUnavailable)
				if !unavailable {
					attempts++
					if attempts >= p.MaxAttempts {
						return nil, &retry.Error{Attempts: attempts, Err: err}
					}
				}
				delay := p.Delay(streak)
				consumers.retried(ctx, handler)
				logger.LogAttrs(ctx, slog.LevelWarn, "eventbus: handler failed, retrying",
					slog.String("handler", handler),
					slog.String("event", msg.Metadata.Get(HeaderEventName)),
					slog.String("event_id", msg.Metadata.Get(HeaderEventID)),
					slog.Int("attempt", streak), slog.Bool("unavailable", unavailable),
					slog.Duration("delay", delay), slog.Any("error", err))
				if retry.Sleep(ctx, delay) != nil {
					return nil, fmt.Errorf("%w: %w", errShutdown, err)
				}
			}
		}
	}
}

// deadLetterable reports whether a failed message goes to the dead-letter
// topic: not when the consumer is stopping, nor (should one get through
// the retries) when a dependency is unavailable.
func deadLetterable(err error) bool {
	return !errors.Is(err, errShutdown) && !errors.Is(err, ErrUnavailable)
}

// recoverMiddleware turns a panic of the handler into a *PanicError.
func recoverMiddleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (out []*message.Message, err error) {
		defer func() {
			if p := recover(); p != nil {
				out, err = nil, &PanicError{Value: p, Stack: string(debug.Stack())}
			}
		}()
		return h(msg)
	}
}
