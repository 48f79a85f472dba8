package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/internal/authtest"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
	"github.com/dddkit/dddkit/valueobject"
)

var t0 = dddkittest.T0

type clock = dddkittest.Clock

type bundle struct {
	bus    *cqrs.Bus
	repo   *adapters.Memory
	events *authtest.Events
	clock  *clock
	cipher *fieldcrypt.Cipher
	tokens *app.Tokens
}

func newBus(t testing.TB) *cqrs.Bus { return authtest.Bus(t, nil) }

func setup(t *testing.T) *bundle { t.Helper(); return setupWith(t, nil) }

// setupWith is setup with deps changed by edit before registering.
func setupWith(t *testing.T, edit func(*app.Deps)) *bundle {
	t.Helper()
	b := &bundle{clock: dddkittest.NewClock(time.Time{}), events: &authtest.Events{}}
	var err error
	b.cipher, err = fieldcrypt.New(bytes.Repeat([]byte{3}, fieldcrypt.KeySize))
	require.NoError(t, err)
	n := 0
	factory, err := domain.NewFactory(b.cipher, b.cipher.DeriveKey("otp"), &domain.FactoryConfig{
		Clock: b.clock.Now,
		Codes: func() (string, error) { n++; return fmt.Sprintf("%06d", 100000+n), nil },
	})
	require.NoError(t, err)
	b.repo, err = adapters.NewMemory(factory, b.events)
	require.NoError(t, err)
	b.tokens, err = app.NewTokens([]app.Key{{Secret: []byte("test secret 4 0123456789abcdefghijklmnop")}}, &app.TokenConfig{Clock: b.clock.Now})
	require.NoError(t, err)
	hasher := authtest.Hasher(t)
	b.bus = newBus(t)
	deps := app.Deps{Users: b.repo, Factory: factory, Tokens: b.tokens, Hasher: hasher, Activity: adapters.NewMemoryActivity()}
	if edit != nil {
		edit(&deps)
	}
	require.NoError(t, app.Register(b.bus, deps))
	require.NoError(t, b.bus.Validate())
	return b
}

var ctx = context.Background()

// lastCode opens the code carried by the latest event, as the
// notification module would.
func (b *bundle) lastCode(t *testing.T) string {
	t.Helper()
	return authtest.OpenCode(t, b.cipher, b.events.Last(t))
}

func (b *bundle) register(t *testing.T, email string) app.Registration {
	t.Helper()
	reg, err := cqrs.Send[app.Registration](ctx, b.bus, app.RegisterUser{Email: email, Password: "correct horse"})
	require.NoError(t, err)
	return reg
}

func (b *bundle) registerVerified(t *testing.T, email string) app.Registration {
	t.Helper()
	reg := b.register(t, email)
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: email, Code: b.lastCode(t), RegistrationToken: reg.RegistrationToken}))
	return reg
}

func fields(err error) []string {
	var out []string
	for _, fe := range valueobject.FieldErrors(err) {
		out = append(out, fe.Field)
	}
	return out
}

func TestTheWholeFlow(t *testing.T) {
	t.Parallel()
	b := setup(t)

	reg := b.register(t, "Ada@Example.com")
	require.Equal(t, "ada@example.com", reg.Email)
	require.NotEmpty(t, reg.UserID)
	require.NotEmpty(t, reg.RegistrationToken.Reveal())
	code := b.lastCode(t)

	_, err := cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "ada@example.com", Password: "correct horse"})
	require.ErrorIs(t, err, domain.ErrNotVerified)

	require.NoError(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ADA@example.com", Code: code, RegistrationToken: reg.RegistrationToken}))

	tok, err := cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "ada@example.com", Password: "correct horse"})
	require.NoError(t, err)
	require.Equal(t, "Bearer", tok.TokenType)
	require.Equal(t, 15*time.Minute, tok.ExpiresIn)
	claims, err := b.tokens.Verify(tok.Token)
	require.NoError(t, err)
	require.Equal(t, reg.UserID, claims.Subject)

	me, err := cqrs.Ask[app.UserView](ctx, b.bus, app.Me{UserID: claims.Subject})
	require.NoError(t, err)
	require.Equal(t, reg.UserID, me.ID)
	require.Equal(t, "ada@example.com", me.Email)
	require.Equal(t, "verified", me.Status)
	require.Equal(t, t0, me.CreatedAt)
	require.NotNil(t, me.VerifiedAt)

	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ChangePassword{UserID: claims.Subject, CurrentPassword: "correct horse", NewPassword: "battery staple"}))
	_, err = cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "ada@example.com", Password: "correct horse"})
	require.ErrorIs(t, err, domain.ErrInvalidCredentials, "the old password stopped working")
	_, err = cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "ada@example.com", Password: "battery staple"})
	require.NoError(t, err)

	require.Equal(t, []string{"auth.user_registered", "auth.user_verified", "auth.password_changed"}, b.events.Names())
}

func TestRegisterRejectsBadInputAndSavesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, tc := range map[string]struct {
		cmd    app.RegisterUser
		fields []string
	}{
		"invalid email":         {app.RegisterUser{Email: "not-an-email", Password: "correct horse"}, []string{"email"}},
		"empty password":        {app.RegisterUser{Email: "ada@example.com"}, []string{"password"}},
		"weak password":         {app.RegisterUser{Email: "ada@example.com", Password: "password"}, []string{"password"}},
		"short password":        {app.RegisterUser{Email: "ada@example.com", Password: "short"}, []string{"password"}},
		"password is the email": {app.RegisterUser{Email: "ada@example.com", Password: "ada@example.com"}, []string{"password"}},
		"both":                  {app.RegisterUser{}, []string{"email", "password"}},
	} {
		_, err := cqrs.Send[app.Registration](ctx, b.bus, tc.cmd)
		require.ErrorIs(t, err, cqrs.ErrValidation, name)
		require.ErrorIs(t, err, app.ErrInvalidInput, name)
		require.Equal(t, tc.fields, fields(err), name)
	}
	require.Zero(t, b.repo.Len())
	require.Empty(t, b.events.Names())
}

// Issue 9, row 1: registering an unverified address again replaces the
// pending registration, so whoever registered first (an attacker) loses
// it; a verified address stays taken.
func TestRegisterExistingEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	attacker := b.register(t, "ada@example.com")
	attackerCode := b.lastCode(t)

	_, err := cqrs.Send[app.Registration](ctx, b.bus, app.RegisterUser{Email: "ADA@EXAMPLE.COM", Password: "other horse"})
	var ra interface{ RetryAfter() time.Duration }
	require.ErrorIs(t, err, domain.ErrResendTooSoon, "within the code cooldown")
	require.ErrorAs(t, err, &ra)
	require.Equal(t, domain.CodeResendInterval, ra.RetryAfter())

	b.clock.Advance(domain.CodeResendInterval)
	victim, err := cqrs.Send[app.Registration](ctx, b.bus, app.RegisterUser{Email: "ADA@EXAMPLE.COM", Password: "other horse"})
	require.NoError(t, err)
	require.Equal(t, attacker.UserID, victim.UserID)
	require.NotEqual(t, attacker.RegistrationToken, victim.RegistrationToken)
	victimCode := b.lastCode(t)
	require.Equal(t, 1, b.repo.Len())
	require.Equal(t, []string{"auth.user_registered", "auth.user_otp_requested"}, b.events.Names())

	for _, c := range []app.VerifyEmail{
		{Email: "ada@example.com", Code: attackerCode, RegistrationToken: attacker.RegistrationToken},
		{Email: "ada@example.com", Code: victimCode, RegistrationToken: attacker.RegistrationToken},
		{Email: "ada@example.com", Code: attackerCode, RegistrationToken: victim.RegistrationToken},
	} {
		require.ErrorIs(t, cqrs.Exec(ctx, b.bus, c), domain.ErrInvalidCode)
	}
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: victimCode, RegistrationToken: victim.RegistrationToken}))
	_, err = cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "ada@example.com", Password: "correct horse"})
	require.ErrorIs(t, err, domain.ErrInvalidCredentials, "the attacker's password is gone")
	_, err = cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "ada@example.com", Password: "other horse"})
	require.NoError(t, err)

	b.clock.Advance(domain.CodeResendInterval)
	_, err = cqrs.Send[app.Registration](ctx, b.bus, app.RegisterUser{Email: "ada@example.com", Password: "third horse"})
	require.ErrorIs(t, err, domain.ErrEmailTaken, "a verified address stays taken")
}

func TestVerifyRules(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := b.register(t, "ada@example.com")
	tok := reg.RegistrationToken
	code := b.lastCode(t)

	err := cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: "12345x", RegistrationToken: tok})
	require.ErrorIs(t, err, cqrs.ErrValidation)
	require.Equal(t, []string{"code"}, fields(err))
	err = cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: code})
	require.ErrorIs(t, err, cqrs.ErrValidation)
	require.Equal(t, []string{"registrationToken"}, fields(err))

	err = cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "nobody@example.com", Code: code, RegistrationToken: tok})
	require.ErrorIs(t, err, domain.ErrInvalidCode, "an unknown address looks like a wrong code")

	for range domain.MaxCodeAttempts - 1 {
		require.ErrorIs(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: "999999", RegistrationToken: tok}), domain.ErrInvalidCode)
	}
	require.ErrorIs(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: code, RegistrationToken: "wrong"}), domain.ErrInvalidCode, "a wrong token is a wrong try")
	require.Len(t, b.events.Names(), 1+domain.MaxCodeAttempts, "each failed attempt is saved")
	require.ErrorIs(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: code, RegistrationToken: tok}), domain.ErrTooManyAttempts)

	// A new code revives verification.
	b.clock.Advance(domain.CodeResendInterval)
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ResendCode{Email: "ada@example.com"}))
	newCode := b.lastCode(t)
	require.ErrorIs(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: code, RegistrationToken: tok}), domain.ErrInvalidCode, "the old code is dead")
	b.clock.Advance(domain.CodeTTL)
	require.ErrorIs(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: newCode, RegistrationToken: tok}), domain.ErrCodeExpired)
	require.ErrorIs(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: newCode, RegistrationToken: "wrong"}), domain.ErrInvalidCode, "only the registrant learns that the code expired")

	b.clock.Advance(time.Second)
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ResendCode{Email: "ada@example.com"}))
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: b.lastCode(t), RegistrationToken: tok}))
	require.ErrorIs(t, cqrs.Exec(ctx, b.bus, app.VerifyEmail{Email: "ada@example.com", Code: "999999", RegistrationToken: tok}), domain.ErrInvalidCode, "a verified address looks like a wrong code")
}

func TestResendNeverTellsWhetherAnAccountExists(t *testing.T) {
	t.Parallel()
	b := setup(t)

	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ResendCode{Email: "nobody@example.com"}))
	require.Empty(t, b.events.Names())

	b.register(t, "ada@example.com")
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ResendCode{Email: "ada@example.com"}), "too soon: accepted, nothing sent")
	require.Equal(t, []string{"auth.user_registered"}, b.events.Names())

	b.clock.Advance(domain.CodeResendInterval)
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ResendCode{Email: "ada@example.com"}))
	require.Equal(t, []string{"auth.user_registered", "auth.user_otp_requested"}, b.events.Names())

	b.registerVerified(t, "bob@example.com")
	b.clock.Advance(time.Hour)
	n := len(b.events.Names())
	require.NoError(t, cqrs.Exec(ctx, b.bus, app.ResendCode{Email: "bob@example.com"}), "verified: accepted, nothing sent")
	require.Len(t, b.events.Names(), n)

	err := cqrs.Exec(ctx, b.bus, app.ResendCode{Email: "not-an-email"})
	require.ErrorIs(t, err, cqrs.ErrValidation)
	require.Equal(t, []string{"email"}, fields(err))
}

func TestLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.register(t, "unverified@example.com")
	b.registerVerified(t, "ada@example.com")

	for name, tc := range map[string]struct {
		q    app.Login
		want error
	}{
		"unknown email":  {app.Login{Email: "nobody@example.com", Password: "correct horse"}, domain.ErrInvalidCredentials},
		"wrong password": {app.Login{Email: "ada@example.com", Password: "wrong horse"}, domain.ErrInvalidCredentials},
		"unverified":     {app.Login{Email: "unverified@example.com", Password: "correct horse"}, domain.ErrNotVerified},
		"no password":    {app.Login{Email: "ada@example.com"}, cqrs.ErrValidation},
		"invalid email":  {app.Login{Email: "ada", Password: "correct horse"}, cqrs.ErrValidation},
	} {
		_, err := cqrs.Ask[app.AccessToken](ctx, b.bus, tc.q)
		require.ErrorIs(t, err, tc.want, name)
	}
	_, err := cqrs.Ask[app.AccessToken](ctx, b.bus, app.Login{Email: "ada@example.com", Password: "correct horse"})
	require.NoError(t, err)
}

func TestMe(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := b.register(t, "ada@example.com")
	me, err := cqrs.Ask[app.UserView](ctx, b.bus, app.Me{UserID: reg.UserID})
	require.NoError(t, err)
	require.Equal(t, app.UserView{ID: reg.UserID, Email: "ada@example.com", Status: "unverified", CreatedAt: t0}, me)

	_, err = cqrs.Ask[app.UserView](ctx, b.bus, app.Me{UserID: valueobject.NewID().String()})
	require.ErrorIs(t, err, aggregate.ErrNotFound)
	_, err = cqrs.Ask[app.UserView](ctx, b.bus, app.Me{UserID: "nope"})
	require.ErrorIs(t, err, cqrs.ErrValidation)
	require.Equal(t, []string{"userId"}, fields(err))
}

func TestChangePasswordRejections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := b.registerVerified(t, "ada@example.com")
	n := len(b.events.Names())

	for name, tc := range map[string]struct {
		cmd    app.ChangePassword
		want   error
		fields []string
	}{
		"wrong current": {app.ChangePassword{UserID: reg.UserID, CurrentPassword: "wrong horse", NewPassword: "battery staple"}, domain.ErrWrongPassword, []string{"currentPassword"}},
		"same":          {app.ChangePassword{UserID: reg.UserID, CurrentPassword: "correct horse", NewPassword: "correct horse"}, domain.ErrSamePassword, []string{"newPassword"}},
		"the email":     {app.ChangePassword{UserID: reg.UserID, CurrentPassword: "correct horse", NewPassword: "ada@example.com"}, valueobject.ErrWeakPassword, []string{"newPassword"}},
		"weak":          {app.ChangePassword{UserID: reg.UserID, CurrentPassword: "correct horse", NewPassword: "12345678"}, cqrs.ErrValidation, []string{"newPassword"}},
		"missing":       {app.ChangePassword{UserID: reg.UserID}, cqrs.ErrValidation, []string{"currentPassword", "newPassword"}},
	} {
		err := cqrs.Exec(ctx, b.bus, tc.cmd)
		require.ErrorIs(t, err, tc.want, name)
		require.Equal(t, tc.fields, fields(err), name)
	}
	require.Len(t, b.events.Names(), n, "nothing saved")

	err := cqrs.Exec(ctx, b.bus, app.ChangePassword{UserID: valueobject.NewID().String(), CurrentPassword: "x", NewPassword: "battery staple"})
	require.ErrorIs(t, err, aggregate.ErrNotFound)
}

// A save that loses a race is re-run by the retry middleware from the load.
func TestConflictIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t)
	reg := b.register(t, "ada@example.com")
	id, err := valueobject.ParseID(reg.UserID)
	require.NoError(t, err)
	b.clock.Advance(domain.CodeResendInterval)

	attempts := 0
	racing := &racingRepo{Memory: b.repo, before: func() {
		attempts++
		if attempts == 1 {
			// Another writer changes the user between our load and our save.
			require.NoError(t, b.repo.Update(ctx, id, func(u *domain.User) error {
				require.ErrorIs(t, u.Verify("999999", "x"), domain.ErrInvalidCode)
				return nil
			}))
		}
	}}
	bus := newBus(t)
	require.NoError(t, app.Register(bus, app.Deps{Users: racing, Factory: mustFactory(t, b), Tokens: b.tokens, Activity: adapters.NewMemoryActivity()}))
	require.NoError(t, cqrs.Exec(ctx, bus, app.ResendCode{Email: "ada@example.com"}))
	require.Equal(t, 2, attempts, "the first save conflicted, the second attempt reloaded and succeeded")
	require.Equal(t, []string{"auth.user_registered", "auth.code_verification_failed", "auth.user_otp_requested"}, b.events.Names())
}

type racingRepo struct {
	*adapters.Memory
	before func()
}

func (r *racingRepo) Update(ctx context.Context, id valueobject.ID, fn func(*domain.User) error) error {
	return r.Memory.Update(ctx, id, func(u *domain.User) error {
		r.before()
		return fn(u)
	})
}

func mustFactory(t *testing.T, b *bundle) *domain.Factory {
	t.Helper()
	f, err := domain.NewFactory(b.cipher, b.cipher.DeriveKey("otp"), &domain.FactoryConfig{Clock: b.clock.Now})
	require.NoError(t, err)
	return f
}

func TestRegisterValidatesDeps(t *testing.T) {
	t.Parallel()
	err := app.Register(newBus(t), app.Deps{})
	require.ErrorContains(t, err, "Users")
	require.ErrorContains(t, err, "Factory")
	require.ErrorContains(t, err, "Tokens")
	require.Error(t, app.Register(nil, app.Deps{}))

	b := setup(t)
	err = app.Register(b.bus, app.Deps{Users: b.repo, Factory: mustFactory(t, b), Tokens: b.tokens, Activity: adapters.NewMemoryActivity()})
	require.ErrorIs(t, err, cqrs.ErrDuplicateHandler)
}

func TestExpectationsCatchAMissingHandler(t *testing.T) {
	t.Parallel()
	bus := newBus(t)
	bus.Expect(app.Expectations()...)
	err := bus.Validate()
	require.ErrorIs(t, err, cqrs.ErrNoHandler)
	for _, name := range []string{"auth.register_user", "auth.verify_email", "auth.resend_code", "auth.change_password", "auth.login", "auth.me"} {
		require.ErrorContains(t, err, name)
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	for _, v := range []any{
		app.RegisterUser{Email: "ada@example.com", Password: "hunter22hunter"},
		app.Login{Email: "ada@example.com", Password: "hunter22hunter"},
		app.ChangePassword{CurrentPassword: "hunter22hunter", NewPassword: "hunter22hunter"},
	} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			require.NotContains(t, fmt.Sprintf(verb, v), "hunter22", verb)
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("cmd", "cmd", v)
		require.NotContains(t, buf.String(), "hunter22")
	}
	require.Equal(t, "hunter22hunter", app.Secret("hunter22hunter").Reveal())
	require.True(t, errors.Is(app.RegisterUser{}.Validate(), app.ErrInvalidInput))
}
