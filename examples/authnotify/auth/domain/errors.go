package domain

import "time"

// Sentinel errors of the auth domain. Each is a refusal: the request is
// declined for a reason of the business, nothing is broken. Their method
// Refusal() bool says so to cqrs.IsRefusal, so the bus's logging middleware
// logs them at INFO rather than ERROR, without this package importing cqrs.
// Repository adapters report a missing user with an error wrapping
// aggregate.ErrNotFound (a refusal too).
var (
	// ErrEmailTaken: a verified user has the address (409). An unverified
	// one is replaced by a new registration instead (User.Reregister).
	ErrEmailTaken = refuse("auth: email address is already registered")

	// ErrInvalidCode: the code does not match the current one (400). The
	// try counted as a failed attempt.
	ErrInvalidCode = refuse("auth: verification code is not valid")

	// ErrCodeExpired: the code was right or wrong, but it is older than
	// CodeTTL; a new one must be requested (400).
	ErrCodeExpired = refuse("auth: verification code has expired")

	// ErrTooManyAttempts: the current code is dead after MaxCodeAttempts
	// wrong tries; a new one must be requested (429).
	ErrTooManyAttempts = refuse("auth: too many wrong verification codes")

	// ErrAlreadyVerified: the address is verified already (409); there is
	// no code to check or resend.
	ErrAlreadyVerified = refuse("auth: email address is already verified")

	// ErrResendTooSoon: a new code was asked for within
	// CodeResendInterval of the last one. Not the caller's fault: the
	// request is accepted and nothing is sent.
	ErrResendTooSoon = refuse("auth: a new code was requested too recently")

	// ErrNotVerified: the account exists and the password is right, but
	// the address is not verified yet (403).
	ErrNotVerified = refuse("auth: email address is not verified")

	// ErrInvalidCredentials: wrong password, or (at the application
	// level) no account with that address; the two are not told apart
	// (401).
	ErrInvalidCredentials = refuse("auth: invalid email or password")

	// ErrWrongPassword: the current password given to change it is not
	// correct. Wrapped in a *valueobject.Error for field
	// "currentPassword" (400).
	ErrWrongPassword = refuse("auth: current password is not correct")

	// ErrSamePassword: the new password equals the current one. Wrapped
	// in a *valueobject.Error for field "newPassword" (400).
	ErrSamePassword = refuse("auth: new password equals the current one")
)

// retryAfterError is a refusal that says when to try again.
type retryAfterError struct {
	err  error
	wait time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// Refusal reports that the error declines a request.
func (e *retryAfterError) Refusal() bool { return true }

// RetryAfter returns how long to wait before trying again.
func (e *retryAfterError) RetryAfter() time.Duration { return e.wait }

// refusal is the type of the sentinels above.
type refusal struct{ msg string }

func refuse(msg string) error { return &refusal{msg: msg} }

func (e *refusal) Error() string { return e.msg }

// Refusal reports that the error declines a request rather than reports a
// failure.
func (e *refusal) Refusal() bool { return true }
