package app

import (
	"context"
	"errors"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/valueobject"
)

// ExpiryScheduler schedules the expiry of an account that is not verified
// yet. The production adapter writes a durable deadline in the unit of
// work of ctx, so the deadline commits with the registration or not at
// all; scheduling the same user again replaces the deadline.
type ExpiryScheduler interface {
	// ScheduleExpiry makes [ExpireAccount] run for userID at at.
	ScheduleExpiry(ctx context.Context, userID string, at time.Time) error
}

// ExpireAccount ends the account UserID if its address is still not
// verified ([domain.User.Expire]). It is dispatched by the deadline that
// registration schedules (UNVERIFIED_ACCOUNT_TTL after it). A verified,
// already expired or unknown account is left alone: the command succeeds
// without doing anything, so a deadline that fires twice or late is
// harmless.
type ExpireAccount struct {
	UserID string
}

// CommandName implements the cqrs naming convention.
func (ExpireAccount) CommandName() string { return "auth.expire_account" }

// Validate checks that UserID is a UUID.
func (c ExpireAccount) Validate() error {
	_, err := c.parse()
	return err
}

func (c ExpireAccount) parse() (valueobject.ID, error) {
	id, err := valueobject.ParseID(c.UserID)
	return id, invalid(valueobject.WithField(err, "userId"))
}

func (h *handlers) expireAccount(ctx context.Context, c ExpireAccount) (struct{}, error) {
	id, err := c.parse()
	if err != nil {
		return struct{}{}, err
	}
	err = h.Users.Update(ctx, id, func(u *domain.User) error { return u.Expire() })
	switch {
	case errors.Is(err, domain.ErrAlreadyVerified), errors.Is(err, aggregate.ErrNotFound):
		return struct{}{}, nil
	}
	return struct{}{}, err
}

// scheduleExpiry schedules the expiry of the unverified user id, when the
// service expires unverified accounts.
func (h *handlers) scheduleExpiry(ctx context.Context, id string) error {
	if h.Expiry == nil {
		return nil
	}
	return h.Expiry.ScheduleExpiry(ctx, id, h.Factory.Now().Add(h.UnverifiedTTL))
}
