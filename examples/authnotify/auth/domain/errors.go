package domain

import "errors"

// Sentinel errors of the auth domain. Repository adapters report a missing
// user with an error wrapping aggregate.ErrNotFound.
var (
	// ErrEmailTaken: another user already registered the address (409).
	ErrEmailTaken = errors.New("auth: email address is already registered")

	// ErrInvalidCode: the code does not match the current one (400). The
	// try counted as a failed attempt.
	ErrInvalidCode = errors.New("auth: verification code is not valid")

	// ErrCodeExpired: the code was right or wrong, but it is older than
	// CodeTTL; a new one must be requested (400).
	ErrCodeExpired = errors.New("auth: verification code has expired")

	// ErrTooManyAttempts: the current code is dead after MaxCodeAttempts
	// wrong tries; a new one must be requested (429).
	ErrTooManyAttempts = errors.New("auth: too many wrong verification codes")

	// ErrAlreadyVerified: the address is verified already (409); there is
	// no code to check or resend.
	ErrAlreadyVerified = errors.New("auth: email address is already verified")

	// ErrResendTooSoon: a new code was asked for within
	// CodeResendInterval of the last one. Not the caller's fault: the
	// request is accepted and nothing is sent.
	ErrResendTooSoon = errors.New("auth: a new code was requested too recently")

	// ErrNotVerified: the account exists and the password is right, but
	// the address is not verified yet (403).
	ErrNotVerified = errors.New("auth: email address is not verified")

	// ErrInvalidCredentials: wrong password, or (at the application
	// level) no account with that address; the two are not told apart
	// (401).
	ErrInvalidCredentials = errors.New("auth: invalid email or password")

	// ErrWrongPassword: the current password given to change it is not
	// correct. Wrapped in a *valueobject.Error for field
	// "currentPassword" (400).
	ErrWrongPassword = errors.New("auth: current password is not correct")

	// ErrSamePassword: the new password equals the current one. Wrapped
	// in a *valueobject.Error for field "newPassword" (400).
	ErrSamePassword = errors.New("auth: new password equals the current one")
)
