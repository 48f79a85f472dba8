package app_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
)

// schedule is one call of ScheduleExpiry.
type schedule struct {
	userID string
	at     time.Time
}

// schedules records what the handlers schedule; the durable schedulers
// are tested with the deadline package they wrap.
type schedules struct {
	mu  sync.Mutex
	got []schedule
}

func (s *schedules) ScheduleExpiry(_ context.Context, userID string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, schedule{userID, at})
	return nil
}

func TestUnverifiedAccountsExpire(t *testing.T) {
	t.Parallel()
	const ttl = 24 * time.Hour
	sched := &schedules{}
	b := setupWith(t, func(d *app.Deps) { d.Expiry, d.UnverifiedTTL = sched, ttl })

	reg := b.register(t, "late@example.com")
	require.Equal(t, []schedule{{reg.UserID, t0.Add(ttl)}}, sched.got, "registration schedules the expiry")

	// Registering again while unverified gives the whole time again.
	b.clock.Advance(domain.CodeResendInterval + time.Minute)
	again := b.register(t, "late@example.com")
	require.Equal(t, reg.UserID, again.UserID)
	require.Len(t, sched.got, 2)
	require.Equal(t, schedule{reg.UserID, b.clock.Now().Add(ttl)}, sched.got[1])

	// Before expiry a log-in is refused as unverified (403) ...
	_, err := cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "late@example.com", Password: "correct horse"})
	require.ErrorIs(t, err, domain.ErrNotVerified)

	b.clock.Advance(ttl)
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ExpireAccount{UserID: reg.UserID}))
	require.Equal(t, authevents.NameAccountExpired, b.events.Last(t).Name)
	// ... after it, like an unknown address (401).
	_, err = cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "late@example.com", Password: "correct horse"})
	require.ErrorIs(t, err, domain.ErrInvalidCredentials)

	// Firing twice changes nothing.
	n := len(b.events.All())
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ExpireAccount{UserID: reg.UserID}))
	require.Len(t, b.events.All(), n)

	// The address is free: a new registration is a new account.
	fresh := b.register(t, "late@example.com")
	require.NotEqual(t, reg.UserID, fresh.UserID)
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "late@example.com", Code: b.lastCode(t), RegistrationToken: fresh.RegistrationToken}))
	_, err = cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "late@example.com", Password: "correct horse"})
	require.NoError(t, err)
}

func TestExpireLeavesVerifiedAndUnknownAccountsAlone(t *testing.T) {
	t.Parallel()
	b := setupWith(t, func(d *app.Deps) { d.Expiry, d.UnverifiedTTL = &schedules{}, time.Hour })
	reg := b.registerVerified(t, "ada@example.com")
	n := len(b.events.All())
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ExpireAccount{UserID: reg.UserID}))
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ExpireAccount{UserID: "0190f3a4-1b2c-7d3e-8f40-123456789abc"}))
	require.Len(t, b.events.All(), n, "nothing recorded")
	_, err := cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "ada@example.com", Password: "correct horse"})
	require.NoError(t, err)

	err = cqrs.Exec(ctx, b.bus, app.ExpireAccount{UserID: "nope"})
	require.ErrorIs(t, err, cqrs.ErrValidation)
}

func TestExpiryNeedsATTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	err := app.Register(newBus(t), app.Deps{Users: b.repo, Factory: mustFactory(t, b), Tokens: b.tokens,
		Activity: &fixedActivity{}, Expiry: &schedules{}})
	require.ErrorContains(t, err, "UnverifiedTTL")
}

// fixedActivity answers the same entries for every user.
type fixedActivity struct{ entries []app.ActivityEntry }

func (f *fixedActivity) List(context.Context, string) ([]app.ActivityEntry, error) {
	return f.entries, nil
}

func TestActivityQuery(t *testing.T) {
	t.Parallel()
	entries := []app.ActivityEntry{{Type: "registered", At: t0}, {Type: "verified", At: t0.Add(time.Minute)}}
	b := setupWith(t, func(d *app.Deps) { d.Activity = &fixedActivity{entries} })
	reg := b.register(t, "ada@example.com")
	got, err := cqrs.Ask[[]app.ActivityEntry](ctx, b.bus, app.Activity{UserID: reg.UserID})
	require.NoError(t, err)
	require.Equal(t, entries, got)

	b = setupWith(t, func(d *app.Deps) { d.Activity = &fixedActivity{} })
	got, err = cqrs.Ask[[]app.ActivityEntry](ctx, b.bus, app.Activity{UserID: reg.UserID})
	require.NoError(t, err)
	require.NotNil(t, got, "no activity is an empty list, not null")
	require.Empty(t, got)

	_, err = cqrs.Ask[[]app.ActivityEntry](ctx, b.bus, app.Activity{UserID: "nope"})
	require.ErrorIs(t, err, cqrs.ErrValidation)
}

func TestActivityType(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		authevents.NameUserRegistered:         "registered",
		authevents.NameCodeVerificationFailed: "verification_failed",
		authevents.NameUserVerified:           "verified",
		authevents.NameUserOtpRequested:       "code_resent",
		authevents.NamePasswordChanged:        "password_changed",
		authevents.NamePasswordResetRequested: "password_reset_requested",
		authevents.NameAccountExpired:         "account_expired",
		"plain":                               "plain",
	} {
		require.Equal(t, want, app.ActivityType(name), name)
	}
}
