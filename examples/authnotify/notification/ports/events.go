// Package ports holds the notification module's event consumers: the
// auth events it reacts to, taken from dddkit's event bus and handed to
// [app.EventHandlers], one email job per event.
//
// Two flavours, one per way the system runs:
//
//   - [SubscribeTx] (production): each delivery runs in the inbox's
//     transaction (eventbus.HandleTx); the job is queued in that same
//     transaction, so the inbox row and the job commit together — a
//     redelivered event finds its inbox row and queues nothing.
//   - [Subscribe] (embedded): at-least-once delivery (eventbus.Handle);
//     the in-process job queue drops a second job with the same event ID.
//
// Errors the application marks permanent become eventbus.Permanent, so
// the router dead-letters the event at once instead of retrying it.
package ports

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
)

// HandlerName is the default name of the notification consumer: its
// Kafka consumer group and its key in the inbox.
const HandlerName = "notification.emails"

// handlerMethod is one method of app.EventHandlers.
type handlerMethod[E aggregate.Event] func(h *app.EventHandlers, ctx context.Context, e E, src app.Source) error

// Subscribe registers handlers on r as consumer name, for the events that
// cause an email.
func Subscribe(r *eventbus.Router, name string, handlers *app.EventHandlers) error {
	if handlers == nil {
		return errors.New("notification: Subscribe: nil handlers")
	}
	return errors.Join(
		handle(r, name, handlers, (*app.EventHandlers).UserRegistered),
		handle(r, name, handlers, (*app.EventHandlers).UserOtpRequested),
		handle(r, name, handlers, (*app.EventHandlers).UserVerified),
		handle(r, name, handlers, (*app.EventHandlers).PasswordChanged),
	)
}

// SubscribeTx registers the handlers on r as consumer name with inbox:
// for every delivery, handlersIn gets the inbox transaction and returns
// handlers whose job queue writes in it.
func SubscribeTx(r *eventbus.Router, name string, inbox *eventbus.Inbox, handlersIn func(tx pgx.Tx) *app.EventHandlers) error {
	if handlersIn == nil {
		return errors.New("notification: SubscribeTx: nil handlers function")
	}
	return errors.Join(
		handleTx(r, name, inbox, handlersIn, (*app.EventHandlers).UserRegistered),
		handleTx(r, name, inbox, handlersIn, (*app.EventHandlers).UserOtpRequested),
		handleTx(r, name, inbox, handlersIn, (*app.EventHandlers).UserVerified),
		handleTx(r, name, inbox, handlersIn, (*app.EventHandlers).PasswordChanged),
	)
}

func handle[E aggregate.Event](r *eventbus.Router, name string, h *app.EventHandlers, m handlerMethod[E]) error {
	return eventbus.Handle(r, name, func(ctx context.Context, e E, md eventbus.Metadata) error {
		return classify(m(h, ctx, e, source(md)))
	})
}

func handleTx[E aggregate.Event](r *eventbus.Router, name string, inbox *eventbus.Inbox, in func(pgx.Tx) *app.EventHandlers, m handlerMethod[E]) error {
	return eventbus.HandleTx(r, name, inbox, func(ctx context.Context, tx pgx.Tx, e E, md eventbus.Metadata) error {
		return classify(m(in(tx), ctx, e, source(md)))
	})
}

func source(md eventbus.Metadata) app.Source {
	return app.Source{EventID: md.EventID, OccurredAt: md.OccurredAt}
}

func classify(err error) error {
	if app.IsPermanent(err) {
		return eventbus.Permanent(err)
	}
	return err
}

// RegisterEvents registers the auth events in reg under their stable
// names and the user aggregate type, so that a router can decode them.
// It registers every event of the contract, also those that cause no
// email, so that none is reported as unknown.
func RegisterEvents(reg *eventbus.Registry) error {
	at := eventbus.AggregateType(authevents.AggregateType)
	return errors.Join(
		eventbus.Register[authevents.UserRegistered](reg, at),
		eventbus.Register[authevents.UserVerified](reg, at),
		eventbus.Register[authevents.UserOtpRequested](reg, at),
		eventbus.Register[authevents.PasswordChanged](reg, at),
		eventbus.Register[authevents.CodeVerificationFailed](reg, at),
	)
}
