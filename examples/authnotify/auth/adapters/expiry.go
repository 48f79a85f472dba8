package adapters

import (
	"context"
	"errors"
	"time"

	"github.com/dddkit/dddkit/deadline"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
)

// AccountExpiryDue is the deadline of an unverified account: the event
// that [Expiry] schedules at registration and that the outbox publishes
// when it is due; auth's own consumer turns it into [app.ExpireAccount]
// (ports.ExpireAccounts). It travels on the user topic, like the events
// of the user, but it is auth's internal business, not part of the
// published contract: other modules ignore it.
type AccountExpiryDue struct {
	UserID string `json:"user_id"`
}

// EventName implements aggregate.Event.
func (AccountExpiryDue) EventName() string { return "auth.account_expiry_due" }

// RegisterDeadlines registers the deadline events of the auth module in
// reg, beside authevents.Register.
func RegisterDeadlines(reg *eventbus.Registry) error {
	return eventbus.Register[AccountExpiryDue](reg, eventbus.AggregateType(authevents.AggregateType))
}

// Expiry is the [app.ExpiryScheduler] on a durable deadline scheduler:
// *postgres.Outbox in production (the deadline is an outbox row written
// in the unit of work of ctx, so it commits with the registration and
// survives restarts), *outbox.Memory embedded.
type Expiry struct {
	s deadline.Scheduler
}

var _ app.ExpiryScheduler = (*Expiry)(nil)

// NewExpiry returns the scheduler on s.
func NewExpiry(s deadline.Scheduler) (*Expiry, error) {
	if s == nil {
		return nil, errors.New("auth: expiry: nil deadline scheduler")
	}
	return &Expiry{s: s}, nil
}

// ExpiryKey is the deadline key of userID's expiry: scheduling it again
// (a registration again) replaces the deadline.
func ExpiryKey(userID string) string { return "auth/expire-unverified/" + userID }

// ScheduleExpiry implements [app.ExpiryScheduler].
func (e *Expiry) ScheduleExpiry(ctx context.Context, userID string, at time.Time) error {
	return e.s.Schedule(ctx, ExpiryKey(userID), at, AccountExpiryDue{UserID: userID})
}
