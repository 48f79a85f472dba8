package process

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/eventbus"
)

// Command registers handler name on r that reacts to every event of
// type E by dispatching one command on bus: the simplest process, with
// no state. command builds the command from the event and its envelope;
// return [eventbus.ErrSkip] to dispatch nothing. It is also how a
// scheduled command is made: schedule an event (package deadline) and
// turn it into the command here.
//
// The command's context carries the event's correlation ID and, as
// causation ID, the event's ID ([aggregate.ContextWithMetadata]); a
// repository stamps both on the events the command's aggregate records,
// so the chain event → command → event can be followed in logs and
// traces.
//
// A failing command is retried and dead-lettered like any handler error
// (mark it [eventbus.Permanent] when retrying cannot help); a command
// without a handler or failing its validation ([cqrs.ErrNoHandler],
// [cqrs.ErrValidation]) is dead-lettered at once. Delivery is at least
// once, so the command handler must tolerate seeing the same command
// twice: make it idempotent, or check the aggregate's state first (a
// [Manager] records the events it applied, for when that is not
// enough).
func Command[E aggregate.Event, C any](r *eventbus.Router, name string, bus *cqrs.Bus, command func(ctx context.Context, event E, env aggregate.Envelope) (C, error), opts ...eventbus.HandlerOption) error {
	if bus == nil {
		return fmt.Errorf("process: command %q: nil cqrs.Bus", name)
	}
	if command == nil {
		return fmt.Errorf("process: command %q: nil command function", name)
	}
	return eventbus.Handle(r, name, func(ctx context.Context, e E, env aggregate.Envelope) error {
		cmd, err := command(ctx, e, env)
		if errors.Is(err, eventbus.ErrSkip) {
			return nil
		}
		if err != nil {
			return err
		}
		ctx = aggregate.ContextWithMetadata(ctx, aggregate.CausedBy(env))
		return exec(ctx, bus, name, cmd)
	}, opts...)
}
