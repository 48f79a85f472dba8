package eventbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
)

// Saga registers handler name on r that reacts to every event of type E by
// dispatching a command on bus: command builds the command from the event
// and its envelope, and [cqrs.Exec] runs it. The command's context
// carries the event's correlation ID and, as causation ID, the event's ID
// ([aggregate.ContextWithMetadata]); a repository stamps both on the
// events the command's aggregate records, so the chain
// event → command → event can be followed in logs and traces.
//
// Return [ErrSkip] from command to dispatch nothing for an event. A
// failing command is retried and dead-lettered like any handler error
// (mark it [Permanent] when retrying cannot help); a command without a
// handler or failing its validation ([cqrs.ErrNoHandler],
// [cqrs.ErrValidation]) is dead-lettered at once. Delivery is at least
// once, so the command handler must tolerate seeing the same command
// twice: make it idempotent, or check the aggregate's state first.
func Saga[E aggregate.Event, C any](r *Router, name string, bus *cqrs.Bus, command func(ctx context.Context, event E, env aggregate.Envelope) (C, error), opts ...HandlerOption) error {
	if bus == nil {
		return fmt.Errorf("eventbus: saga %q: nil cqrs.Bus", name)
	}
	if command == nil {
		return fmt.Errorf("eventbus: saga %q: nil command function", name)
	}
	return Handle(r, name, func(ctx context.Context, e E, env aggregate.Envelope) error {
		cmd, err := command(ctx, e, env)
		if errors.Is(err, ErrSkip) {
			return nil
		}
		if err != nil {
			return err
		}
		ctx = aggregate.ContextWithMetadata(ctx, causedBy(env))
		if err := cqrs.Exec(ctx, bus, cmd); err != nil {
			err = fmt.Errorf("eventbus: saga %q: %w", name, err)
			if errors.Is(err, cqrs.ErrNoHandler) || errors.Is(err, cqrs.ErrResultType) || errors.Is(err, cqrs.ErrValidation) {
				// The same command will be refused the same way again.
				return Permanent(err)
			}
			return err
		}
		return nil
	}, opts...)
}
