package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/valueobject"
)

// Deps are what the handlers need.
type Deps struct {
	// Users stores users. Required.
	Users domain.Repository
	// Factory creates users. Required.
	Factory *domain.Factory
	// Tokens issues access tokens at login. Required.
	Tokens *Tokens
	// Hasher hashes and checks passwords; nil means a zero
	// valueobject.Hasher (argon2id, OWASP parameters).
	Hasher domain.PasswordHasher
	// Throttle limits failed logins per account and per client address;
	// nil means no limit.
	Throttle LoginThrottle
	// Activity reads the account activity read model. Required.
	Activity ActivityReader
	// Expiry schedules the expiry of unverified accounts, UnverifiedTTL
	// after they registered (again); nil means accounts never expire.
	Expiry ExpiryScheduler
	// UnverifiedTTL is how long an account may stay unverified when
	// Expiry is set; it must then be positive.
	UnverifiedTTL time.Duration
	// Logger gets debug lines for requests that are answered with a
	// success that hides what happened (resend for an unknown address);
	// nil means slog.Default().
	Logger *slog.Logger
}

func (d *Deps) validate() error {
	var errs []error
	if d.Users == nil {
		errs = append(errs, errors.New("auth: Deps.Users is nil"))
	}
	if d.Factory == nil {
		errs = append(errs, errors.New("auth: Deps.Factory is nil"))
	}
	if d.Tokens == nil {
		errs = append(errs, errors.New("auth: Deps.Tokens is nil"))
	}
	if d.Activity == nil {
		errs = append(errs, errors.New("auth: Deps.Activity is nil"))
	}
	if d.Expiry != nil && d.UnverifiedTTL <= 0 {
		errs = append(errs, fmt.Errorf("auth: Deps.UnverifiedTTL is %s, want a positive duration when Deps.Expiry is set", d.UnverifiedTTL))
	}
	return errors.Join(errs...)
}

// Expectations lists every command and query of the auth module with its
// result type, for [cqrs.Bus.Expect]; [Register] declares them.
func Expectations() []cqrs.Expectation {
	return []cqrs.Expectation{
		cqrs.CommandReturning[RegisterUser, Registration](),
		cqrs.CommandReturning[VerifyEmail, struct{}](),
		cqrs.CommandReturning[ResendCode, struct{}](),
		cqrs.CommandReturning[ChangePassword, struct{}](),
		cqrs.CommandReturning[RequestPasswordReset, struct{}](),
		cqrs.CommandReturning[ResetPassword, struct{}](),
		cqrs.CommandReturning[ExpireAccount, struct{}](),
		cqrs.QueryReturning[Login, AccessToken](),
		cqrs.QueryReturning[Me, UserView](),
		cqrs.QueryReturning[Authenticate, Claims](),
		cqrs.QueryReturning[Activity, []ActivityEntry](),
	}
}

// Register declares [Expectations] on bus and registers a handler for
// each of them. Call bus.Validate afterwards, once every module has
// registered.
func Register(bus *cqrs.Bus, deps Deps) error {
	if bus == nil {
		return errors.New("auth: Register: nil bus")
	}
	if err := deps.validate(); err != nil {
		return err
	}
	h := &handlers{Deps: deps}
	if h.Hasher == nil {
		h.Hasher = &valueobject.Hasher{}
	}
	if h.Logger == nil {
		h.Logger = slog.Default()
	}
	// A hash to check passwords against when there is no user, so that a
	// login for an unknown address costs what a wrong password costs.
	pw, err := valueobject.NewPassword(rand.Text())
	if err != nil {
		return fmt.Errorf("auth: Register: %w", err)
	}
	if h.dummyHash, err = h.Hasher.Hash(pw); err != nil {
		return fmt.Errorf("auth: Register: %w", err)
	}

	bus.Expect(Expectations()...)
	return errors.Join(
		cqrs.HandleCommand(bus, h.registerUser),
		cqrs.HandleCommand(bus, h.verifyEmail),
		cqrs.HandleCommand(bus, h.resendCode),
		cqrs.HandleCommand(bus, h.changePassword),
		cqrs.HandleCommand(bus, h.requestPasswordReset),
		cqrs.HandleCommand(bus, h.resetPassword),
		cqrs.HandleCommand(bus, h.expireAccount),
		cqrs.HandleQuery(bus, h.login),
		cqrs.HandleQuery(bus, h.me),
		cqrs.HandleQuery(bus, h.authenticate),
		cqrs.HandleQuery(bus, h.activity),
	)
}

// LoginThrottle limits failed logins (internal/throttle implements it).
// Check answers an error that carries a RetryAfter() time.Duration when a
// login is refused for now; the account is the canonical email address.
type LoginThrottle interface {
	Check(ctx context.Context, account, address string) error
	Failed(ctx context.Context, account, address string) error
	Succeeded(ctx context.Context, account string) error
}

type handlers struct {
	Deps
	dummyHash string
}

func (h *handlers) registerUser(ctx context.Context, c RegisterUser) (Registration, error) {
	email, pw, err := c.parse()
	if err != nil {
		return Registration{}, err
	}
	existing, err := h.Users.ByEmail(ctx, email)
	switch {
	case err == nil:
		return h.reregister(ctx, existing, pw)
	case !errors.Is(err, aggregate.ErrNotFound):
		return Registration{}, err
	}
	hash, err := h.Hasher.Hash(pw)
	if err != nil {
		return Registration{}, err
	}
	u, err := h.Factory.Register(valueobject.NewID(), email, hash)
	if err != nil {
		return Registration{}, err
	}
	if err := h.Users.Add(ctx, u); err != nil {
		return Registration{}, err
	}
	if err := h.scheduleExpiry(ctx, u.ID()); err != nil {
		return Registration{}, err
	}
	return registrationOf(u), nil
}

// reregister replaces the pending registration of an unverified user; a
// verified one keeps ErrEmailTaken. The cheap checks run before hashing.
func (h *handlers) reregister(ctx context.Context, u *domain.User, pw valueobject.Password) (Registration, error) {
	if err := u.CheckReregister(); err != nil {
		return Registration{}, err
	}
	id, err := valueobject.ParseID(u.ID())
	if err != nil {
		return Registration{}, err
	}
	hash, err := h.Hasher.Hash(pw)
	if err != nil {
		return Registration{}, err
	}
	var reg Registration
	err = h.Users.Update(ctx, id, func(u *domain.User) error {
		if err := u.Reregister(hash); err != nil {
			return err
		}
		reg = registrationOf(u)
		return nil
	})
	if err != nil {
		return Registration{}, err
	}
	// A new registration gets the whole time again.
	if err := h.scheduleExpiry(ctx, reg.UserID); err != nil {
		return Registration{}, err
	}
	return reg, nil
}

func registrationOf(u *domain.User) Registration {
	return Registration{UserID: u.ID(), Email: u.Email().String(), RegistrationToken: Secret(u.IssuedRegistrationToken())}
}

// verifyEmail answers an unknown address, a verified one, a wrong code
// and a wrong token alike (ErrInvalidCode): no account enumeration.
func (h *handlers) verifyEmail(ctx context.Context, c VerifyEmail) (struct{}, error) {
	email, err := c.parse()
	if err != nil {
		return struct{}{}, err
	}
	u, err := h.Users.ByEmail(ctx, email)
	if errors.Is(err, aggregate.ErrNotFound) {
		return struct{}{}, domain.ErrInvalidCode
	}
	if err != nil {
		return struct{}{}, err
	}
	if u.IsVerified() {
		return struct{}{}, domain.ErrInvalidCode
	}
	id, err := valueobject.ParseID(u.ID())
	if err != nil {
		return struct{}{}, err
	}
	var rejected error
	err = h.Users.Update(ctx, id, func(u *domain.User) error {
		rejected = u.Verify(c.Code, c.RegistrationToken.Reveal())
		if errors.Is(rejected, domain.ErrInvalidCode) {
			return nil // a wrong code or token is a failed attempt that must be saved
		}
		return rejected
	})
	if errors.Is(err, domain.ErrAlreadyVerified) || errors.Is(rejected, domain.ErrAlreadyVerified) {
		return struct{}{}, domain.ErrInvalidCode // verified meanwhile
	}
	if err != nil {
		return struct{}{}, err
	}
	// The failed attempt is stored: in a unit of work (cqrs.Transaction)
	// it commits although the command is refused, so the limit of tries
	// holds.
	return struct{}{}, cqrs.KeepChanges(rejected)
}

func (h *handlers) resendCode(ctx context.Context, c ResendCode) (struct{}, error) {
	return struct{}{}, h.quietly(ctx, c.Email, "resend code", (*domain.User).RequestNewCode,
		domain.ErrResendTooSoon, domain.ErrAlreadyVerified)
}

// quietly runs change on the user with the address rawEmail (through
// Update) and answers an unknown address, and the errors in quiet, like a
// success with nothing sent: the answer tells nothing about the account.
func (h *handlers) quietly(ctx context.Context, rawEmail, what string, change func(*domain.User) error, quiet ...error) error {
	email, err := valueobject.ParseEmail(rawEmail)
	if err != nil {
		return invalid(err)
	}
	u, err := h.Users.ByEmail(ctx, email)
	if errors.Is(err, aggregate.ErrNotFound) {
		h.Logger.DebugContext(ctx, "auth: "+what+": no account, nothing sent")
		return nil
	}
	if err != nil {
		return err
	}
	id, err := valueobject.ParseID(u.ID())
	if err != nil {
		return err
	}
	err = h.Users.Update(ctx, id, change)
	for _, q := range quiet {
		if errors.Is(err, q) {
			h.Logger.DebugContext(ctx, "auth: "+what+": nothing sent", slog.String("user", u.ID()), slog.Any("reason", err))
			return nil
		}
	}
	return err
}

func (h *handlers) changePassword(ctx context.Context, c ChangePassword) (struct{}, error) {
	id, next, err := c.parse()
	if err != nil {
		return struct{}{}, err
	}
	err = h.Users.Update(ctx, id, func(u *domain.User) error {
		return u.ChangePassword(c.CurrentPassword.Reveal(), next, h.Hasher)
	})
	return struct{}{}, err
}

// requestPasswordReset answers alike for an unknown address, an unverified
// account and a request within the code cooldown: no account enumeration.
func (h *handlers) requestPasswordReset(ctx context.Context, c RequestPasswordReset) (struct{}, error) {
	return struct{}{}, h.quietly(ctx, c.Email, "password reset", (*domain.User).RequestPasswordReset,
		domain.ErrResendTooSoon, domain.ErrNotVerified)
}

// resetPassword answers an unknown address like a wrong code
// (ErrInvalidCode). A success resets the login throttle of the account.
func (h *handlers) resetPassword(ctx context.Context, c ResetPassword) (struct{}, error) {
	email, next, err := c.parse()
	if err != nil {
		return struct{}{}, err
	}
	u, err := h.Users.ByEmail(ctx, email)
	if errors.Is(err, aggregate.ErrNotFound) {
		return struct{}{}, domain.ErrInvalidCode
	}
	if err != nil {
		return struct{}{}, err
	}
	id, err := valueobject.ParseID(u.ID())
	if err != nil {
		return struct{}{}, err
	}
	var rejected error
	err = h.Users.Update(ctx, id, func(u *domain.User) error {
		rejected = u.ResetPassword(c.Code, next, h.Hasher)
		if errors.Is(rejected, domain.ErrInvalidCode) {
			return nil // a wrong code is a failed attempt that must be saved
		}
		return rejected
	})
	if err != nil {
		return struct{}{}, err
	}
	if rejected != nil {
		return struct{}{}, cqrs.KeepChanges(rejected) // the failed attempt commits, as in verifyEmail
	}
	if h.Throttle != nil {
		if err := h.Throttle.Succeeded(ctx, domain.CanonicalEmail(email).String()); err != nil {
			return struct{}{}, err
		}
	}
	return struct{}{}, nil
}

func (h *handlers) login(ctx context.Context, q Login) (AccessToken, error) {
	email, err := q.parse()
	if err != nil {
		return AccessToken{}, err
	}
	if h.Throttle == nil {
		return h.checkLogin(ctx, email, q.Password)
	}
	// Before any hashing, so a locked account or a noisy address costs
	// nothing; unknown addresses count like known ones.
	account := domain.CanonicalEmail(email).String()
	if err := h.Throttle.Check(ctx, account, q.ClientAddress); err != nil {
		return AccessToken{}, cqrs.Refuse(err)
	}
	tok, err := h.checkLogin(ctx, email, q.Password)
	switch {
	case errors.Is(err, domain.ErrInvalidCredentials):
		if terr := h.Throttle.Failed(ctx, account, q.ClientAddress); terr != nil {
			return AccessToken{}, terr
		}
	case err == nil:
		if terr := h.Throttle.Succeeded(ctx, account); terr != nil {
			return AccessToken{}, terr
		}
	}
	return tok, err
}

func (h *handlers) checkLogin(ctx context.Context, email valueobject.Email, password Secret) (AccessToken, error) {
	u, err := h.Users.ByEmail(ctx, email)
	if errors.Is(err, aggregate.ErrNotFound) {
		// Same cost as a wrong password, and the same answer when the
		// hasher is too busy (503), so that load tells no accounts apart.
		if err := h.Hasher.Verify(h.dummyHash, password.Reveal()); err != nil && !errors.Is(err, valueobject.ErrPasswordMismatch) {
			return AccessToken{}, err
		}
		return AccessToken{}, domain.ErrInvalidCredentials
	}
	if err != nil {
		return AccessToken{}, err
	}
	if err := u.Authenticate(password.Reveal(), h.Hasher); err != nil {
		return AccessToken{}, err
	}
	return h.Tokens.Issue(u.ID(), u.CredentialVersion())
}

func (h *handlers) me(ctx context.Context, q Me) (UserView, error) {
	id, err := q.parse()
	if err != nil {
		return UserView{}, err
	}
	u, err := h.Users.ByID(ctx, id)
	if err != nil {
		return UserView{}, err
	}
	return viewOf(u), nil
}

// authenticate answers every bad token with a refusal (logged at INFO):
// a client sending a stale token is no failure of the service.
func (h *handlers) authenticate(ctx context.Context, q Authenticate) (Claims, error) {
	claims, err := h.Tokens.Verify(q.Token.Reveal())
	if err != nil {
		return Claims{}, cqrs.Refuse(err)
	}
	id, err := valueobject.ParseID(claims.Subject)
	if err != nil {
		return Claims{}, cqrs.Refuse(fmt.Errorf("%w: subject is not a user ID", ErrInvalidToken))
	}
	u, err := h.Users.ByID(ctx, id)
	if errors.Is(err, aggregate.ErrNotFound) {
		return Claims{}, cqrs.Refuse(fmt.Errorf("%w: the account of this token does not exist", ErrInvalidToken))
	}
	if err != nil {
		return Claims{}, err
	}
	if claims.CredentialVersion != u.CredentialVersion() {
		return Claims{}, cqrs.Refuse(fmt.Errorf("%w: %w", ErrInvalidToken, ErrTokenRevoked))
	}
	return claims, nil
}
