package eventbus

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/dddkit/dddkit/retry"
)

// errShutdown marks a failure that happened because the router is
// stopping (the message's context ended). Such a message is not
// dead-lettered but left unacknowledged, so it is delivered again.
var errShutdown = errors.New("eventbus: consumer stopping")

// retryMiddleware runs the handler up to MaxAttempts times with jittered
// exponential backoff; permanent errors are returned at once, unavailable
// ones are retried without counting.
func (r *Router) retryMiddleware(handler string) message.HandlerMiddleware {
	return retryMiddleware(r.logger, r.cfg.Retry, handler)
}

// retryMiddleware is [Router.retryMiddleware] for any consumer: p must
// have its defaults filled in. When the attempts are used up it returns a
// [*retry.Error] wrapping the last error.
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

// deadLetterMiddleware publishes a message whose handling failed for good
// to topic (watermill's poison queue: reason, topic and handler in
// headers) and acknowledges it, so that the stream goes on. A failure
// caused by shutdown is passed through instead (the message is nacked and
// comes again).
func (r *Router) deadLetterMiddleware(handler, topic string) (message.HandlerMiddleware, error) {
	pq, err := middleware.PoisonQueueWithFilter(r.transport.Publisher(), topic, deadLetterable)
	if err != nil {
		return nil, fmt.Errorf("eventbus: handler %q: dead-letter topic %q: %w", handler, topic, err)
	}
	return func(h message.HandlerFunc) message.HandlerFunc {
		logged := func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err != nil && deadLetterable(err) {
				r.logger.LogAttrs(msg.Context(), slog.LevelError, "eventbus: event dead-lettered",
					slog.String("handler", handler),
					slog.String("topic", message.SubscribeTopicFromCtx(msg.Context())),
					slog.String("dead_letter_topic", topic),
					slog.String("event", msg.Metadata.Get(HeaderEventName)),
					slog.String("event_id", msg.Metadata.Get(HeaderEventID)),
					slog.Any("error", err))
			}
			return out, err
		}
		return pq(logged)
	}, nil
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
