// Package ports holds the notification module's event consumers: the
// auth events it reacts to, taken from dddkit's event bus and handed to
// [app.EventHandlers], one email job per event.
//
// Every delivery goes through an inbox (eventbus.HandleOnce), so a
// redelivered event queues nothing. In production the inbox is
// PostgreSQL's: the handler runs in the inbox's transaction and the River
// job is inserted in it (the job queue takes the transaction from the
// context), so the inbox row and the job commit together. In the embedded
// mode it is an in-memory inbox in front of the in-process job queue.
//
// Errors the application marks permanent become eventbus.Permanent, so
// the router dead-letters the event at once instead of retrying it.
package ports

import (
	"context"
	"errors"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
)

// HandlerName is the default name of the notification consumer: its
// Kafka consumer group and its key in the inbox.
const HandlerName = "notification.emails"

// handlerMethod is one method of app.EventHandlers.
type handlerMethod[E aggregate.Event] func(h *app.EventHandlers, ctx context.Context, e E, src app.Source) error

// Subscribe registers handlers on r as consumer name, for the events that
// cause an email, each delivery through inbox.
func Subscribe(r *eventbus.Router, name string, inbox eventbus.Inbox, handlers *app.EventHandlers) error {
	if handlers == nil {
		return errors.New("notification: Subscribe: nil handlers")
	}
	return errors.Join(
		handle(r, name, inbox, handlers, (*app.EventHandlers).UserRegistered),
		handle(r, name, inbox, handlers, (*app.EventHandlers).UserOtpRequested),
		handle(r, name, inbox, handlers, (*app.EventHandlers).UserVerified),
		handle(r, name, inbox, handlers, (*app.EventHandlers).PasswordChanged),
		handle(r, name, inbox, handlers, (*app.EventHandlers).PasswordResetRequested),
	)
}

func handle[E aggregate.Event](r *eventbus.Router, name string, inbox eventbus.Inbox, h *app.EventHandlers, m handlerMethod[E]) error {
	return eventbus.HandleOnce(r, name, inbox, func(ctx context.Context, e E, env aggregate.Envelope) error {
		return classify(m(h, ctx, e, app.Source{EventID: env.ID, OccurredAt: env.OccurredAt}))
	})
}

func classify(err error) error {
	if app.IsPermanent(err) {
		return eventbus.Permanent(err)
	}
	return err
}
