package domain_test

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/examples/authnotify/internal/authtest"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
	"github.com/dddkit/dddkit/valueobject"
)

var t0 = dddkittest.T0

type clock = dddkittest.Clock

// codes hands out 111111, 222222, ... so each test knows every code.
type codes struct {
	mu   sync.Mutex
	next int
}

func (g *codes) Next() (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next++
	return fmt.Sprintf("%06d", ((g.next-1)%9+1)*111111), nil
}

type bundle struct {
	clock   *clock
	codes   *codes
	cipher  *fieldcrypt.Cipher
	factory *domain.Factory
	hasher  *valueobject.Hasher
}

func setup(t *testing.T) *bundle {
	t.Helper()
	cipher, err := fieldcrypt.New(bytes.Repeat([]byte{1}, fieldcrypt.KeySize))
	require.NoError(t, err)
	b := &bundle{clock: dddkittest.NewClock(time.Time{}), codes: &codes{}, cipher: cipher}
	b.factory, err = domain.NewFactory(cipher, cipher.DeriveKey("test/otp"), &domain.FactoryConfig{Clock: b.clock.Now, Codes: b.codes.Next, RegistrationTokens: fixedToken})
	require.NoError(t, err)
	b.hasher = authtest.Hasher(t)
	return b
}

func (b *bundle) hash(t *testing.T, plain string) string {
	t.Helper()
	pw, err := valueobject.NewPassword(plain)
	require.NoError(t, err)
	h, err := b.hasher.Hash(pw)
	require.NoError(t, err)
	return h
}

// register creates ada@example.com with password "correct horse" and
// returns the user and the first code (111111... see codes).
func (b *bundle) register(t *testing.T) (*domain.User, string) {
	t.Helper()
	email, err := valueobject.ParseEmail("Ada@Example.com")
	require.NoError(t, err)
	u, err := b.factory.Register(valueobject.NewID(), email, b.hash(t, "correct horse"))
	require.NoError(t, err)
	code := b.codeOf(t, u, u.Changes()[len(u.Changes())-1])
	aggregate.MarkCommitted(u, u.Version())
	return u, code
}

// codeOf opens the sealed code in an event, as the notification module does.
func (b *bundle) codeOf(t *testing.T, u *domain.User, env aggregate.Envelope) string {
	t.Helper()
	require.Equal(t, u.ID(), env.AggregateID)
	return authtest.OpenCode(t, b.cipher, env)
}

var names = authtest.Names

func verified(t *testing.T, b *bundle) *domain.User {
	t.Helper()
	u, code := b.register(t)
	require.NoError(t, u.Verify(code, testToken))
	aggregate.MarkCommitted(u, u.Version())
	return u
}

func password(t *testing.T, s string) valueobject.Password {
	t.Helper()
	pw, err := valueobject.NewPassword(s)
	require.NoError(t, err)
	return pw
}

func TestRegisterRecordsUserRegisteredWithSealedCode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	email, _ := valueobject.ParseEmail("Ada@Example.com")
	u, err := b.factory.Register(valueobject.NewID(), email, b.hash(t, "correct horse"))
	require.NoError(t, err)

	require.Equal(t, "ada@example.com", u.Email().String(), "stored lower-cased")
	require.Equal(t, domain.StatusUnverified, u.Status())
	require.False(t, u.IsVerified())
	require.Equal(t, t0, u.CreatedAt())
	require.True(t, u.VerifiedAt().IsZero())
	require.Equal(t, t0.Add(10*time.Minute), u.CodeExpiresAt())
	require.Equal(t, int64(1), u.Version())
	require.True(t, u.IsNew())

	changes := u.Changes()
	require.Len(t, changes, 1)
	env := changes[0]
	require.Equal(t, "auth.user_registered", env.Name)
	require.Equal(t, "user", env.AggregateType)
	require.Equal(t, u.ID(), env.AggregateID)
	require.Equal(t, t0, env.OccurredAt, "stamped by the injected clock")
	e := env.Payload.(authevents.UserRegistered)
	require.Equal(t, u.ID(), e.UserID)
	require.Equal(t, "ada@example.com", e.Email)
	require.Equal(t, t0.Add(domain.CodeTTL), e.CodeExpiresAt)
	require.Equal(t, t0, e.RegisteredAt)
	require.NotContains(t, e.EncryptedCode, "111111", "the code is sealed in the event")
	require.Equal(t, "111111", b.codeOf(t, u, env))

	_, err = b.cipher.Open(e.EncryptedCode, "another-user")
	require.ErrorIs(t, err, fieldcrypt.ErrDecrypt, "the sealed code is bound to the user ID")
}

func TestRegisterStoresOnlyAHashOfTheCode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, code := b.register(t)
	s := u.Snapshot()
	require.Len(t, s.CodeHash, 32)
	require.False(t, bytes.Contains(s.CodeHash, []byte(code)))
	require.NotContains(t, fmt.Sprintf("%+v", s), code)

	// Same code, other user: other hash (bound to the user ID).
	b.codes.next = 0
	other, otherCode := b.register(t)
	require.Equal(t, code, otherCode)
	require.NotEqual(t, s.CodeHash, other.Snapshot().CodeHash)
}

func TestRegisterRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	email, _ := valueobject.ParseEmail("ada@example.com")
	_, err := b.factory.Register(valueobject.ID{}, email, b.hash(t, "correct horse"))
	require.Error(t, err)
	_, err = b.factory.Register(valueobject.NewID(), valueobject.Email{}, b.hash(t, "correct horse"))
	require.Error(t, err)
	_, err = b.factory.Register(valueobject.NewID(), email, "correct horse")
	require.ErrorIs(t, err, valueobject.ErrUnknownHashFormat, "a plain password is never stored")
}

func TestRegisterFailsWhenTheGeneratorFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	email, _ := valueobject.ParseEmail("ada@example.com")
	for name, gen := range map[string]domain.CodeGenerator{
		"error":      func() (string, error) { return "", errors.New("no entropy") },
		"too short":  func() (string, error) { return "12345", nil },
		"not digits": func() (string, error) { return "12a456", nil },
	} {
		f, err := domain.NewFactory(b.cipher, b.cipher.DeriveKey("k"), &domain.FactoryConfig{Codes: gen})
		require.NoError(t, err)
		_, err = f.Register(valueobject.NewID(), email, b.hash(t, "correct horse"))
		require.Error(t, err, name)
	}
}

func TestVerifyWithTheRightCode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, code := b.register(t)
	b.clock.Advance(9*time.Minute + 59*time.Second)

	require.NoError(t, u.Verify(code, testToken))
	require.True(t, u.IsVerified())
	require.Equal(t, domain.StatusVerified, u.Status())
	require.Equal(t, t0.Add(9*time.Minute+59*time.Second), u.VerifiedAt())
	require.True(t, u.CodeExpiresAt().IsZero(), "the code is used up")
	require.Equal(t, []string{"auth.user_verified"}, names(u.Changes()))
	e := u.Changes()[0].Payload.(authevents.UserVerified)
	require.Equal(t, authevents.UserVerified{UserID: u.ID(), Email: "ada@example.com", VerifiedAt: b.clock.Now()}, e)

	aggregate.MarkCommitted(u, u.Version())
	require.ErrorIs(t, u.Verify(code, testToken), domain.ErrAlreadyVerified)
	require.False(t, u.HasChanges())
}

func TestVerifyWithAWrongCodeRecordsTheFailedAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, _ := b.register(t)

	require.ErrorIs(t, u.Verify("000000", testToken), domain.ErrInvalidCode)
	require.False(t, u.IsVerified())
	require.Equal(t, 1, u.CodeFailures())
	require.Equal(t, []string{"auth.code_verification_failed"}, names(u.Changes()), "the attempt moves the version, so it must be saved")
	require.Equal(t, authevents.CodeVerificationFailed{UserID: u.ID(), Attempt: 1, FailedAt: t0}, u.Changes()[0].Payload)

	// Malformed input is just a wrong code to the aggregate.
	require.ErrorIs(t, u.Verify("not a code", testToken), domain.ErrInvalidCode)
	require.Equal(t, 2, u.CodeFailures())
}

func TestVerifyExpiredCode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, code := b.register(t)
	b.clock.Advance(domain.CodeTTL)

	err := u.Verify(code, testToken)
	require.ErrorIs(t, err, domain.ErrCodeExpired)
	require.Contains(t, err.Error(), "expired")
	require.ErrorIs(t, u.Verify("000000", testToken), domain.ErrCodeExpired, "a wrong code after expiry is not a counted attempt")
	require.False(t, u.HasChanges())
	require.Zero(t, u.CodeFailures())
}

func TestFiveWrongCodesKillTheCode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, code := b.register(t)

	for i := 1; i <= domain.MaxCodeAttempts; i++ {
		require.ErrorIs(t, u.Verify("000000", testToken), domain.ErrInvalidCode, "try %d", i)
		require.Equal(t, i, u.CodeFailures())
	}
	require.Len(t, u.Changes(), domain.MaxCodeAttempts)
	aggregate.MarkCommitted(u, u.Version())

	require.ErrorIs(t, u.Verify(code, testToken), domain.ErrTooManyAttempts, "dead even for the right code")
	require.ErrorIs(t, u.Verify("000000", testToken), domain.ErrTooManyAttempts)
	require.False(t, u.IsVerified())
	require.False(t, u.HasChanges(), "tries on a dead code record nothing")

	// Until a new one is requested.
	b.clock.Advance(domain.CodeResendInterval)
	require.NoError(t, u.RequestNewCode())
	require.Zero(t, u.CodeFailures())
	require.NoError(t, u.Verify(b.codeOf(t, u, u.Changes()[0]), testToken))
	require.True(t, u.IsVerified())
}

func TestRequestNewCodeIssuesAFreshCodeAndKillsTheOld(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, oldCode := b.register(t)
	require.ErrorIs(t, u.Verify("000000", testToken), domain.ErrInvalidCode)
	aggregate.MarkCommitted(u, u.Version())

	b.clock.Advance(domain.CodeResendInterval)
	require.NoError(t, u.RequestNewCode())
	require.Equal(t, []string{"auth.user_otp_requested"}, names(u.Changes()))
	env := u.Changes()[0]
	e := env.Payload.(authevents.UserOtpRequested)
	now := t0.Add(domain.CodeResendInterval)
	require.Equal(t, u.ID(), e.UserID)
	require.Equal(t, "ada@example.com", e.Email)
	require.Equal(t, now, e.RequestedAt)
	require.Equal(t, now.Add(domain.CodeTTL), e.CodeExpiresAt)
	require.Equal(t, now.Add(domain.CodeTTL), u.CodeExpiresAt(), "a new 10 minutes")
	require.Zero(t, u.CodeFailures(), "the attempt counter starts again")
	newCode := b.codeOf(t, u, env)
	require.NotEqual(t, oldCode, newCode)
	require.NotContains(t, e.EncryptedCode, newCode)
	aggregate.MarkCommitted(u, u.Version())

	require.ErrorIs(t, u.Verify(oldCode, testToken), domain.ErrInvalidCode, "the old code stopped working")
	require.NoError(t, u.Verify(newCode, testToken))
}

func TestRequestNewCodeAtMostOncePerMinute(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, code := b.register(t)

	b.clock.Advance(domain.CodeResendInterval - time.Nanosecond)
	require.ErrorIs(t, u.RequestNewCode(), domain.ErrResendTooSoon, "counted from the code sent at registration")
	require.False(t, u.HasChanges(), "nothing recorded, nothing sent")
	require.NoError(t, u.Verify(code, testToken), "a throttled request leaves the current code alive")
	aggregate.MarkCommitted(u, u.Version())

	b2 := setup(t)
	u, _ = b2.register(t)
	b2.clock.Advance(domain.CodeResendInterval)
	require.NoError(t, u.RequestNewCode())
	b2.clock.Advance(30 * time.Second)
	require.ErrorIs(t, u.RequestNewCode(), domain.ErrResendTooSoon, "counted from the latest code")
	b2.clock.Advance(30 * time.Second)
	require.NoError(t, u.RequestNewCode())
	require.Equal(t, []string{"auth.user_otp_requested", "auth.user_otp_requested"}, names(u.Changes()))
}

func TestRequestNewCodeForAVerifiedUser(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := verified(t, b)
	b.clock.Advance(time.Hour)
	require.ErrorIs(t, u.RequestNewCode(), domain.ErrAlreadyVerified)
	require.False(t, u.HasChanges())
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, _ := b.register(t)
	require.ErrorIs(t, u.Authenticate("correct horse", b.hasher), domain.ErrNotVerified, "unverified: the right password is not enough")
	require.ErrorIs(t, u.Authenticate("wrong horse", b.hasher), domain.ErrInvalidCredentials, "the password is checked first")

	u = verified(t, b)
	require.NoError(t, u.Authenticate("correct horse", b.hasher))
	require.ErrorIs(t, u.Authenticate("wrong horse", b.hasher), domain.ErrInvalidCredentials)
	require.ErrorIs(t, u.Authenticate("", b.hasher), domain.ErrInvalidCredentials)
	require.False(t, u.HasChanges(), "log-in changes nothing")
}

func TestAuthenticateWithABrokenStoredHashIsAServerFault(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := verified(t, b)
	s := u.Snapshot()
	s.PasswordHash = "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$" // no key
	_, err := b.factory.Unmarshal(s)
	require.Error(t, err, "a broken hash is refused on load")

	broken := brokenHasher{}
	err = u.Authenticate("correct horse", broken)
	require.Error(t, err)
	require.NotErrorIs(t, err, domain.ErrInvalidCredentials)
}

type brokenHasher struct{}

func (brokenHasher) Hash(valueobject.Password) (string, error) { return "", errors.New("broken") }
func (brokenHasher) Verify(string, string) error {
	return &valueobject.Error{Field: "passwordHash", Reason: "broken", Err: valueobject.ErrMalformedHash}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := verified(t, b)
	b.clock.Advance(time.Hour)
	require.Zero(t, u.CredentialVersion(), "never changed")

	require.NoError(t, u.ChangePassword("correct horse", password(t, "battery staple"), b.hasher))
	require.Equal(t, t0.Add(time.Hour).UnixMicro(), u.CredentialVersion(), "a new credential version revokes older tokens")
	require.Equal(t, []string{"auth.password_changed"}, names(u.Changes()))
	require.Equal(t, authevents.PasswordChanged{UserID: u.ID(), Email: "ada@example.com", ChangedAt: t0.Add(time.Hour)}, u.Changes()[0].Payload)
	require.Equal(t, t0.Add(time.Hour), u.PasswordChangedAt())
	require.NotContains(t, fmt.Sprintf("%+v", u.Changes()[0].Payload), "battery", "no password or hash in the event")

	require.ErrorIs(t, u.Authenticate("correct horse", b.hasher), domain.ErrInvalidCredentials, "the old password stopped working")
	require.NoError(t, u.Authenticate("battery staple", b.hasher))
}

func TestChangePasswordRejections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := verified(t, b)

	err := u.ChangePassword("wrong horse", password(t, "battery staple"), b.hasher)
	require.ErrorIs(t, err, domain.ErrWrongPassword)
	require.Equal(t, "currentPassword", valueobject.FieldErrors(err)[0].Field)

	err = u.ChangePassword("correct horse", password(t, "correct horse"), b.hasher)
	require.ErrorIs(t, err, domain.ErrSamePassword)
	require.Equal(t, "newPassword", valueobject.FieldErrors(err)[0].Field)

	err = u.ChangePassword("correct horse", password(t, "ada@example.com"), b.hasher)
	require.ErrorIs(t, err, valueobject.ErrWeakPassword, "not the email address")
	require.Equal(t, "newPassword", valueobject.FieldErrors(err)[0].Field)

	err = u.ChangePassword("correct horse", valueobject.Password{}, b.hasher)
	require.ErrorIs(t, err, valueobject.ErrEmpty)

	require.False(t, u.HasChanges(), "nothing recorded")
	require.NoError(t, u.Authenticate("correct horse", b.hasher), "the password is unchanged")

	unverified, _ := b.register(t)
	require.ErrorIs(t, unverified.ChangePassword("correct horse", password(t, "battery staple"), b.hasher), domain.ErrNotVerified)
}

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, code := b.register(t)
	require.ErrorIs(t, u.Verify("000000", testToken), domain.ErrInvalidCode)
	aggregate.MarkCommitted(u, u.Version())

	s := u.Snapshot()
	restored, err := b.factory.Unmarshal(s)
	require.NoError(t, err)
	require.NoError(t, aggregate.Restore(restored, u.Version()))
	require.Equal(t, s, restored.Snapshot())
	require.Equal(t, u.ID(), restored.ID())
	require.Equal(t, int64(2), restored.CommittedVersion())
	require.False(t, restored.HasChanges())
	require.Equal(t, 1, restored.CodeFailures())

	// Behaviour survives the round trip: the stored hash still checks.
	require.NoError(t, restored.Verify(code, testToken))
	require.Equal(t, []aggregate.Envelope{}, filter(restored.Changes(), "auth.code_verification_failed"))
	require.Equal(t, int64(3), restored.Changes()[0].Version)

	// A snapshot is a copy.
	s.CodeHash[0] ^= 1
	require.NotEqual(t, s.CodeHash, u.Snapshot().CodeHash)
}

func filter(envs []aggregate.Envelope, name string) []aggregate.Envelope {
	out := []aggregate.Envelope{}
	for _, e := range envs {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func TestUnmarshalRefusesBrokenSnapshots(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u, _ := b.register(t)
	good := u.Snapshot()
	for name, mutate := range map[string]func(*domain.Snapshot){
		"bad id":            func(s *domain.Snapshot) { s.ID = "42" },
		"bad email":         func(s *domain.Snapshot) { s.Email = "nope" },
		"plain password":    func(s *domain.Snapshot) { s.PasswordHash = "correct horse" },
		"unknown status":    func(s *domain.Snapshot) { s.Status = "banned" },
		"no created at":     func(s *domain.Snapshot) { s.CreatedAt = time.Time{} },
		"verified, no time": func(s *domain.Snapshot) { s.Status = domain.StatusVerified },
		"failures < 0":      func(s *domain.Snapshot) { s.CodeFailures = -1 },
		"failures > max":    func(s *domain.Snapshot) { s.CodeFailures = domain.MaxCodeAttempts + 1 },
		"short code hash":   func(s *domain.Snapshot) { s.CodeHash = []byte{1, 2, 3} },
	} {
		s := good
		mutate(&s)
		_, err := b.factory.Unmarshal(s)
		require.Error(t, err, name)
	}
}

func TestNewFactoryValidates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := domain.NewFactory(nil, make([]byte, 32), nil)
	require.Error(t, err)
	_, err = domain.NewFactory(b.cipher, make([]byte, 31), nil)
	require.Error(t, err)
	_, err = domain.NewFactory(nil, nil, nil)
	require.ErrorContains(t, err, "sealer")
	require.ErrorContains(t, err, "code key", "every problem at once")
	f, err := domain.NewFactory(b.cipher, make([]byte, 32), nil)
	require.NoError(t, err)
	require.NotNil(t, f)
}

func TestRandomCode(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 200 {
		c, err := domain.RandomCode()
		require.NoError(t, err)
		require.True(t, domain.IsCode(c), c)
		seen[c] = true
	}
	require.Greater(t, len(seen), 190, "random, not constant")
}

func TestIsCode(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"000000", "123456"} {
		require.True(t, domain.IsCode(s), s)
	}
	for _, s := range []string{"", "12345", "1234567", "12345a", " 12345", "１２３４５６"} {
		require.False(t, domain.IsCode(s), s)
	}
}

func TestCanonicalEmail(t *testing.T) {
	t.Parallel()
	e, _ := valueobject.ParseEmail("Ada.Lovelace+Tag@Example.COM")
	require.Equal(t, "ada.lovelace+tag@example.com", domain.CanonicalEmail(e).String())
	require.True(t, domain.CanonicalEmail(valueobject.Email{}).IsZero())
}

const testToken = "test-registration-token"

func fixedToken() (string, error) { return testToken, nil }

// Issue 9, row 1, in the domain: a new registration of an unverified
// address replaces the password, the code and the token; only the new pair
// verifies, and only the new password authenticates afterwards.
func TestReregisterReplacesThePendingRegistration(t *testing.T) {
	t.Parallel()
	cipher, err := fieldcrypt.New(bytes.Repeat([]byte{1}, fieldcrypt.KeySize))
	require.NoError(t, err)
	b := &bundle{clock: dddkittest.NewClock(time.Time{}), codes: &codes{}, cipher: cipher, hasher: authtest.Hasher(t)}
	tokens := []string{"first-token", "second-token"}
	b.factory, err = domain.NewFactory(cipher, cipher.DeriveKey("test/otp"), &domain.FactoryConfig{
		Clock: b.clock.Now, Codes: b.codes.Next,
		RegistrationTokens: func() (string, error) { t := tokens[0]; tokens = tokens[1:]; return t, nil },
	})
	require.NoError(t, err)
	email, err := valueobject.ParseEmail("ada@example.com")
	require.NoError(t, err)
	u, err := b.factory.Register(valueobject.NewID(), email, b.hash(t, "attacker horse"))
	require.NoError(t, err)
	require.Equal(t, "first-token", u.IssuedRegistrationToken())
	oldCode := b.codeOf(t, u, u.Changes()[0])
	aggregate.MarkCommitted(u, u.Version())

	// Stored and loaded: the plain token is gone, its hash is kept.
	restored, err := b.factory.Unmarshal(u.Snapshot())
	require.NoError(t, err)
	require.NoError(t, aggregate.Restore(restored, u.Version()))
	require.Empty(t, restored.IssuedRegistrationToken())
	require.Len(t, restored.Snapshot().RegistrationHash, 32)
	u = restored

	err = u.Reregister(b.hash(t, "victim horse"))
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorIs(t, err, domain.ErrResendTooSoon)
	require.ErrorAs(t, err, &ra)
	require.Equal(t, domain.CodeResendInterval, ra.RetryAfter())
	require.False(t, u.HasChanges())

	b.clock.Advance(domain.CodeResendInterval)
	require.NoError(t, u.Reregister(b.hash(t, "victim horse")))
	require.Equal(t, "second-token", u.IssuedRegistrationToken())
	require.Equal(t, []string{"auth.user_otp_requested"}, names(u.Changes()))
	newCode := b.codeOf(t, u, u.Changes()[0])

	require.ErrorIs(t, u.Verify(oldCode, "first-token"), domain.ErrInvalidCode)
	require.ErrorIs(t, u.Verify(newCode, "first-token"), domain.ErrInvalidCode)
	require.ErrorIs(t, u.Verify(oldCode, "second-token"), domain.ErrInvalidCode)
	require.Equal(t, 3, u.CodeFailures(), "a wrong token counts as a wrong try")
	require.NoError(t, u.Verify(newCode, "second-token"))
	require.Nil(t, u.Snapshot().RegistrationHash, "used up")
	require.ErrorIs(t, u.Authenticate("attacker horse", b.hasher), domain.ErrInvalidCredentials)
	require.NoError(t, u.Authenticate("victim horse", b.hasher))

	b.clock.Advance(domain.CodeResendInterval)
	require.ErrorIs(t, u.Reregister(b.hash(t, "third horse")), domain.ErrEmailTaken)
}

// Issue 9, password reset: a verified user is mailed a sealed reset code;
// the right code sets the new password, records PasswordChanged (the
// security email) and moves the credential version on.
func TestPasswordReset(t *testing.T) {
	t.Parallel()
	b := setup(t)
	u := verified(t, b)
	b.clock.Advance(time.Hour)

	require.NoError(t, u.RequestPasswordReset())
	require.Equal(t, []string{"auth.password_reset_requested"}, names(u.Changes()))
	e := u.Changes()[0].Payload.(authevents.PasswordResetRequested)
	require.Equal(t, "ada@example.com", e.Email)
	require.Equal(t, b.clock.Now().Add(domain.CodeTTL), e.CodeExpiresAt)
	code := b.codeOf(t, u, u.Changes()[0])
	require.NotContains(t, e.EncryptedCode, code, "sealed")
	require.NotContains(t, fmt.Sprintf("%x", u.Snapshot().CodeHash), code, "stored hashed")
	aggregate.MarkCommitted(u, u.Version())

	b.clock.Advance(30 * time.Second)
	require.ErrorIs(t, u.RequestPasswordReset(), domain.ErrResendTooSoon, "60 s cooldown")
	require.ErrorIs(t, u.Verify(code, testToken), domain.ErrAlreadyVerified, "a reset code verifies nothing")

	require.NoError(t, u.ResetPassword(code, password(t, "battery staple"), b.hasher))
	require.Equal(t, []string{"auth.password_changed"}, names(u.Changes()))
	require.Equal(t, authevents.PasswordChanged{UserID: u.ID(), Email: "ada@example.com", ChangedAt: b.clock.Now()}, u.Changes()[0].Payload)
	require.Equal(t, b.clock.Now().UnixMicro(), u.CredentialVersion(), "older tokens are revoked")
	require.ErrorIs(t, u.Authenticate("correct horse", b.hasher), domain.ErrInvalidCredentials)
	require.NoError(t, u.Authenticate("battery staple", b.hasher))
	aggregate.MarkCommitted(u, u.Version())
	require.ErrorIs(t, u.ResetPassword(code, password(t, "another staple"), b.hasher), domain.ErrInvalidCode, "the code is used up")
}

func TestPasswordResetRules(t *testing.T) {
	t.Parallel()
	b := setup(t)

	unverified, regCode := b.register(t)
	require.ErrorIs(t, unverified.RequestPasswordReset(), domain.ErrNotVerified)
	require.ErrorIs(t, unverified.ResetPassword(regCode, password(t, "battery staple"), b.hasher), domain.ErrInvalidCode, "a verification code resets nothing")
	require.False(t, unverified.HasChanges())

	u := verified(t, b)
	require.ErrorIs(t, u.ResetPassword("111111", password(t, "battery staple"), b.hasher), domain.ErrInvalidCode, "no reset requested")
	require.NoError(t, u.RequestPasswordReset())
	code := b.codeOf(t, u, u.Changes()[0])
	aggregate.MarkCommitted(u, u.Version())

	err := u.ResetPassword(code, password(t, "ada@example.com"), b.hasher)
	require.ErrorIs(t, err, valueobject.ErrWeakPassword, "the policy applies")
	require.Equal(t, "newPassword", valueobject.FieldErrors(err)[0].Field)

	for i := 1; i <= domain.MaxCodeAttempts; i++ {
		require.ErrorIs(t, u.ResetPassword("000000", password(t, "battery staple"), b.hasher), domain.ErrInvalidCode, "try %d", i)
		require.Equal(t, authevents.PasswordResetFailed{UserID: u.ID(), Attempt: i, FailedAt: b.clock.Now()}, u.Changes()[i-1].Payload)
	}
	aggregate.MarkCommitted(u, u.Version())
	require.ErrorIs(t, u.ResetPassword(code, password(t, "battery staple"), b.hasher), domain.ErrTooManyAttempts, "dead even for the right code")
	require.False(t, u.HasChanges())

	// A new code after the cooldown; it expires after CodeTTL.
	b.clock.Advance(domain.CodeResendInterval)
	require.NoError(t, u.RequestPasswordReset())
	code = b.codeOf(t, u, u.Changes()[0])
	require.Zero(t, u.CodeFailures())
	b.clock.Advance(domain.CodeTTL)
	require.ErrorIs(t, u.ResetPassword(code, password(t, "battery staple"), b.hasher), domain.ErrCodeExpired)
	require.NoError(t, u.Authenticate("correct horse", b.hasher), "the password is unchanged")

	// The state survives the store.
	b.clock.Advance(domain.CodeResendInterval)
	aggregate.MarkCommitted(u, u.Version())
	require.NoError(t, u.RequestPasswordReset())
	code = b.codeOf(t, u, u.Changes()[0])
	restored, err := b.factory.Unmarshal(u.Snapshot())
	require.NoError(t, err)
	require.NoError(t, restored.ResetPassword(code, password(t, "battery staple"), b.hasher))
}
