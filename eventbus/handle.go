package eventbus

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
)

// HandlerFunc handles one event of type E. ctx carries the
// [aggregate.Metadata] for whatever the handler causes (correlation ID
// carried over, causation ID = md.EventID), so commands it dispatches and
// events they record are linked to this one.
//
// Returning nil acknowledges the event. An error is retried (see
// [RouterConfig.Retry]) and, when retries run out or the error is [Permanent],
// the event goes to the dead-letter topic and the stream goes on.
type HandlerFunc[E aggregate.Event] func(ctx context.Context, event E, md Metadata) error

// TxHandlerFunc is a [HandlerFunc] that works inside the inbox
// transaction tx: what it writes through tx commits together with the
// inbox row that marks the event as handled, or not at all.
type TxHandlerFunc[E aggregate.Event] func(ctx context.Context, tx pgx.Tx, event E, md Metadata) error

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
// come again. Use [HandleTx] with an [Inbox] when effects must happen
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
	return r.add(name, et, func(ctx context.Context, e aggregate.Event, md Metadata) error {
		ev, ok := e.(E)
		if !ok {
			return Permanent(fmt.Errorf("eventbus: handler %q: decoded %T, want %s", name, e, et.goType))
		}
		return fn(ctx, ev, md)
	}, opts)
}

// HandleTx registers fn as handler name for event type E, like [Handle],
// with the inbox making its effects happen exactly once: each delivery
// runs in a transaction that first inserts (name, event ID) into the
// inbox table. If that row is already there the event was handled before;
// the transaction is rolled back, fn does not run and the delivery is
// acknowledged. Otherwise fn runs with the transaction, and its writes and
// the inbox row commit together. A failing fn rolls everything back and
// is retried.
func HandleTx[E aggregate.Event](r *Router, name string, inbox *Inbox, fn TxHandlerFunc[E], opts ...HandlerOption) error {
	if inbox == nil {
		return fmt.Errorf("eventbus: handler %q: nil Inbox", name)
	}
	if fn == nil {
		return fmt.Errorf("eventbus: handler %q: nil function", name)
	}
	return Handle(r, name, func(ctx context.Context, e E, md Metadata) error {
		_, err := inbox.Process(ctx, name, md, func(ctx context.Context, tx pgx.Tx) error {
			return fn(ctx, tx, e, md)
		})
		return err
	}, opts...)
}
