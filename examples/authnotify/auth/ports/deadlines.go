package ports

import (
	"context"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/process"
)

// ExpiryHandlerName is the default name of the consumer that expires
// unverified accounts: its consumer group.
const ExpiryHandlerName = "auth.expire-unverified"

// ExpireAccounts registers on r, as consumer name, the scheduled command
// of unverified accounts: when an [adapters.AccountExpiryDue] deadline
// fires, it dispatches [app.ExpireAccount] on bus, with the registration
// request's correlation ID and the deadline as causation.
// [app.ExpireAccount] leaves a verified or already expired account alone,
// so a deadline delivered twice is harmless.
func ExpireAccounts(r *eventbus.Router, name string, bus *cqrs.Bus) error {
	return process.Command(r, name, bus, func(_ context.Context, e adapters.AccountExpiryDue, _ aggregate.Envelope) (app.ExpireAccount, error) {
		return app.ExpireAccount{UserID: e.UserID}, nil
	})
}
