package eventbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// HandlerFunc handles one event of type E. env is the event's envelope as
// it arrived — ID, name, aggregate type, ID and version, occurred-at time
// and metadata — with env.Payload the event itself (event is
// env.Payload, typed). ctx carries the [aggregate.Metadata] for whatever
// the handler causes (correlation ID carried over, causation ID =
// env.ID), so commands it dispatches and events they record are linked to
// this one.
//
// Returning nil acknowledges the event. An error is retried (see
// [RouterConfig.Retry]) and, when retries run out or the error is
// [Permanent], the event becomes a dead letter: the later events of its
// aggregate wait behind it until it is replayed or skipped, and the other
// aggregates go on (see "Dead letters" in the package documentation).
type HandlerFunc[E aggregate.Event] func(ctx context.Context, event E, env aggregate.Envelope) error

// Handle registers fn as handler name for event type E on r. E must be
// registered in the router's [Registry]; the handler consumes the topic of
// E's aggregate type (or the one given with [FromTopic]).
//
// A handler name is one consumer: with Kafka one consumer group, which
// gets every event of the topic once and commits its own offsets. Two
// handlers with different names are independent: each sees every event,
// and one failing does not re-run the other. Several calls with the same
// name and different event types make one consumer that handles them all,
// in the order they are on the topic (use this for a projection that must
// see one aggregate's events in order).
//
// Delivery is at least once: after a crash or a rebalance an event can
// come again. Use [HandleOnce] with an [Inbox] when effects must happen
// once.
func Handle[E aggregate.Event](r *Router, name string, fn HandlerFunc[E], opts ...HandlerOption) error {
	if r == nil {
		return errors.New("eventbus: Handle on a nil Router")
	}
	if fn == nil {
		return fmt.Errorf("eventbus: handler %q: nil function", name)
	}
	et, err := typeOf[E](r.reg)
	if err != nil {
		return fmt.Errorf("eventbus: handler %q: %w", name, err)
	}
	return r.add(name, et, typed(name, et, fn), nil, opts)
}

// typed turns fn into the untyped form the router dispatches to.
func typed[E aggregate.Event](name string, et *eventType, fn HandlerFunc[E]) handleFunc {
	return func(ctx context.Context, env aggregate.Envelope) (err error) {
		ev, ok := env.Payload.(E)
		if !ok {
			return Permanent(fmt.Errorf("eventbus: handler %q: decoded %T, want %s", name, env.Payload, et.goType))
		}
		ctx, span := startHandle(ctx, name, env)
		defer func() { telemetry.End(span, err) }()
		return fn(ctx, ev, env)
	}
}

// HandleOnce registers fn as handler name for event type E, like [Handle],
// with inbox making its effects happen once per event however often the
// event is delivered: the inbox records (name, event ID) and runs fn only
// if that record is new, in one transaction with fn's writes. A duplicate
// is acknowledged without running fn; a failing fn rolls the record back
// too, and is retried. Every event type registered under one name uses
// the same inbox.
//
// fn's ctx carries the inbox's transaction. With the PostgreSQL inbox
// (package [github.com/dddkit/dddkit/postgres]) it is a unit of work:
// repositories called with ctx join it, and postgres.TxFromContext(ctx)
// returns the transaction for the handler's own statements (a River job
// inserted with InsertTx, a projection row), which commit with the inbox
// record or not at all. Effects outside that transaction (an HTTP call, an
// email) are not covered: enqueue a job in it instead.
//
// On a [BatchTransport] (Kafka) the handler applies a partition's events
// in batches: one [Inbox.ProcessBatch], one transaction, for up to
// [RouterConfig.MaxBatch] events, fn running for each new one in order.
// When fn fails for one of them the batch rolls back and that event is
// handled alone, retried and dead-lettered as with one at a time; so fn
// can run more than once for an event, and only the run that committed
// leaves effects. On other transports each event has its own
// [Inbox.Process]. See "Batches" in the package documentation.
func HandleOnce[E aggregate.Event](r *Router, name string, inbox Inbox, fn HandlerFunc[E], opts ...HandlerOption) error {
	if r == nil {
		return errors.New("eventbus: HandleOnce on a nil Router")
	}
	if inbox == nil {
		return fmt.Errorf("eventbus: handler %q: nil Inbox", name)
	}
	if fn == nil {
		return fmt.Errorf("eventbus: handler %q: nil function", name)
	}
	et, err := typeOf[E](r.reg)
	if err != nil {
		return fmt.Errorf("eventbus: handler %q: %w", name, err)
	}
	return r.add(name, et, typed(name, et, fn), inbox, opts)
}
