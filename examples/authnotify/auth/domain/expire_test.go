package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
)

// User.Expire and Verify, given/when/then with the test kit: each scenario starts
// from an unverified user as a repository loads it (registered at t0),
// replays the given events, calls Expire and checks what it recorded.

const expiringID = "0190a6a0-0000-7000-8000-000000000001"

func unverifiedUser(t *testing.T, b *bundle) func() *domain.User {
	t.Helper()
	hash := b.hash(t, "correct horse")
	return func() *domain.User {
		u, err := b.factory.Unmarshal(domain.Snapshot{
			ID:            expiringID,
			Email:         "ada@example.com",
			PasswordHash:  hash,
			Status:        domain.StatusUnverified,
			CreatedAt:     t0,
			CodeIssuedAt:  t0,
			CodeExpiresAt: t0.Add(domain.CodeTTL),
		})
		require.NoError(t, err)
		return u
	}
}

func TestExpireAnUnverifiedUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.clock.Advance(24 * time.Hour)
	r := dddkittest.Aggregate(t, unverifiedUser(t, b)).
		Given(authevents.CodeVerificationFailed{UserID: expiringID, Attempt: 1, FailedAt: t0.Add(time.Minute)}).
		When((*domain.User).Expire).
		Then(authevents.AccountExpired{UserID: expiringID, ExpiredAt: t0.Add(24 * time.Hour)}).
		OccurredAt(t0.Add(24 * time.Hour))
	require.True(t, r.Aggregate().IsExpired())
	require.True(t, r.Aggregate().CodeExpiresAt().IsZero(), "the pending code dies with the account")
}

func TestExpireAVerifiedUserFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dddkittest.Aggregate(t, unverifiedUser(t, b)).
		Given(authevents.UserVerified{UserID: expiringID, Email: "ada@example.com", VerifiedAt: t0.Add(time.Minute)}).
		When((*domain.User).Expire).
		ThenError(domain.ErrAlreadyVerified)
}

func TestExpireTwiceIsHarmless(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dddkittest.Aggregate(t, unverifiedUser(t, b)).
		Given(authevents.AccountExpired{UserID: expiringID, ExpiredAt: t0.Add(time.Hour)}).
		When((*domain.User).Expire).
		Then()
}

// Verify on a user whose verification the history holds is refused
// (the snapshot alone, unverified and without a code, would give
// ErrInvalidCode).
func TestVerifyAVerifiedUserFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	dddkittest.Aggregate(t, unverifiedUser(t, b)).
		Given(authevents.UserVerified{UserID: expiringID, Email: "ada@example.com", VerifiedAt: t0.Add(time.Minute)}).
		When(func(u *domain.User) error { return u.Verify("111111", testToken) }).
		ThenError(domain.ErrAlreadyVerified)
}
