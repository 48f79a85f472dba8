package domain

import (
	"errors"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/valueobject"
)

// Status is where a user is in sign-up.
type Status string

// The statuses of a user.
const (
	// StatusUnverified: registered, the email address not yet confirmed.
	StatusUnverified Status = "unverified"
	// StatusVerified: the address was confirmed with a code; the user can
	// log in.
	StatusVerified Status = "verified"
	// StatusExpired: the address was never verified within the service's
	// time limit ([User.Expire]); the account is gone for every purpose
	// but the record, and its address is free for a new registration.
	StatusExpired Status = "expired"
)

// PasswordHasher hashes and checks passwords. *valueobject.Hasher
// implements it.
type PasswordHasher interface {
	// Hash returns the stored form of pw.
	Hash(pw valueobject.Password) (string, error)
	// Verify returns nil if plain matches hash and
	// valueobject.ErrPasswordMismatch if it does not; any other error
	// means the stored hash is broken.
	Verify(hash, plain string) error
}

// User is the auth module's aggregate: an account identified by an email
// address, with a password and, until it is verified, a one-time code.
// Create one with [Factory.Register] and restore one with
// [Factory.Unmarshal]; change it only through its methods. A User is not
// safe for concurrent use.
type User struct {
	aggregate.Root
	f *Factory

	email             valueobject.Email
	passwordHash      string
	status            Status
	createdAt         time.Time
	verifiedAt        time.Time
	passwordChangedAt time.Time
	code              otp
	// registrationHash is the HMAC of the current registration's token
	// (nil when verified); issuedToken is the plain token, only on the
	// instance that issued it and never stored.
	registrationHash []byte
	issuedToken      string
}

// IssuedRegistrationToken returns the registration token that
// [Factory.Register] or [User.Reregister] issued on this instance, to be
// handed to the registrant once; "" on a user restored from the store. Only
// its hash is stored: verification needs it together with the mailed code.
func (u *User) IssuedRegistrationToken() string { return u.issuedToken }

// Email returns the user's address, lower-cased.
func (u *User) Email() valueobject.Email { return u.email }

// Status returns [StatusUnverified], [StatusVerified] or [StatusExpired].
func (u *User) Status() Status { return u.status }

// IsVerified reports whether the address has been verified.
func (u *User) IsVerified() bool { return u.status == StatusVerified }

// CreatedAt returns when the user registered.
func (u *User) CreatedAt() time.Time { return u.createdAt }

// VerifiedAt returns when the address was verified; the zero time while it
// is not.
func (u *User) VerifiedAt() time.Time { return u.verifiedAt }

// PasswordChangedAt returns when the password was last changed; the zero
// time if never.
func (u *User) PasswordChangedAt() time.Time { return u.passwordChangedAt }

// CredentialVersion identifies the user's current password: 0 until it is
// first changed, then the microseconds since the Unix epoch of the last
// change (the precision every store keeps). Access tokens carry it, and a
// token with another version was issued for an older password and is
// revoked.
func (u *User) CredentialVersion() int64 {
	if u.passwordChangedAt.IsZero() {
		return 0
	}
	return u.passwordChangedAt.UnixMicro()
}

// CodeExpiresAt returns when the current code expires; the zero time when
// there is no live code.
func (u *User) CodeExpiresAt() time.Time {
	if u.code.hash == nil {
		return time.Time{}
	}
	return u.code.expiresAt
}

// CodeFailures returns how many wrong tries the current code has had.
func (u *User) CodeFailures() int { return u.code.failures }

// Verify checks code and registrationToken against the current
// registration and, when both match, marks the address verified and
// records [authevents.UserVerified]; the code and token are then used up.
// The code proves the mailbox, the token proves the registrant, so the
// password that becomes usable is that of the one who verifies.
//
// It fails with [ErrAlreadyVerified] for a verified user,
// [ErrTooManyAttempts] once the registration has had [MaxCodeAttempts]
// wrong tries, [ErrInvalidCode] for a wrong token or a wrong code, and
// [ErrCodeExpired] after [CodeTTL] (only with the right token). A wrong token
// or code is a failed attempt that must be stored: Verify records
// [authevents.CodeVerificationFailed] before it returns ErrInvalidCode, and
// the caller saves the user although the verification failed.
func (u *User) Verify(code, registrationToken string) error {
	now := u.f.clock()
	switch {
	case u.status == StatusVerified:
		return ErrAlreadyVerified
	case u.code.hash == nil || u.registrationHash == nil:
		return ErrInvalidCode
	case u.code.failures >= MaxCodeAttempts:
		return ErrTooManyAttempts
	}
	tokenOK := u.f.matches(hashRegistrationToken, u.ID(), registrationToken, u.registrationHash)
	if tokenOK && !now.Before(u.code.expiresAt) {
		return ErrCodeExpired
	}
	codeOK := u.f.matches(hashCode, u.ID(), code, u.code.hash)
	if !tokenOK || !codeOK || !now.Before(u.code.expiresAt) {
		if err := u.Record(authevents.CodeVerificationFailed{
			UserID:   u.ID(),
			Attempt:  u.code.failures + 1,
			FailedAt: now,
		}); err != nil {
			return err
		}
		return ErrInvalidCode
	}
	return u.Record(authevents.UserVerified{UserID: u.ID(), Email: u.email.String(), VerifiedAt: now})
}

// CheckReregister tells whether [User.Reregister] would be accepted now:
// [ErrEmailTaken] for a verified user, an error wrapping [ErrResendTooSoon]
// with a RetryAfter() time.Duration method within [CodeResendInterval] of
// the last code, nil otherwise. Call it before hashing the new password.
func (u *User) CheckReregister() error {
	if u.status == StatusVerified {
		return ErrEmailTaken
	}
	next := u.code.issuedAt.Add(CodeResendInterval)
	if now := u.f.clock(); now.Before(next) {
		return &retryAfterError{err: ErrResendTooSoon, wait: next.Sub(now)}
	}
	return nil
}

// Reregister replaces the pending registration of an unverified user: a
// new password (passwordHash, as for [Factory.Register]), a new code and a
// new registration token ([User.IssuedRegistrationToken]); the old code and
// token stop working and the attempt counter starts again. It records
// [authevents.UserOtpRequested] with the new code, sealed, so the code is
// mailed. It fails as [User.CheckReregister] does.
func (u *User) Reregister(passwordHash string) error {
	if err := u.CheckReregister(); err != nil {
		return err
	}
	if _, err := valueobject.ParsePasswordHash(passwordHash); err != nil {
		return fmt.Errorf("auth: register again: %w", err)
	}
	now := u.f.clock()
	issued, err := u.newCode(now)
	if err != nil {
		return err
	}
	token, err := u.newRegistrationToken()
	if err != nil {
		return err
	}
	if err := u.Record(authevents.UserOtpRequested{
		UserID:        u.ID(),
		Email:         u.email.String(),
		EncryptedCode: issued.sealed,
		CodeExpiresAt: issued.otp.expiresAt,
		RequestedAt:   now,
	}); err != nil {
		return err
	}
	u.passwordHash = passwordHash
	u.code.hash = issued.otp.hash
	u.registrationHash = hashRegistrationToken(u.f.codeKey, u.ID(), token)
	u.issuedToken = token
	return nil
}

func (u *User) newRegistrationToken() (string, error) {
	token, err := u.f.tokens()
	if err != nil {
		return "", fmt.Errorf("auth: new registration token for user %s: %w", u.ID(), err)
	}
	if token == "" || len(token) > MaxRegistrationTokenLength {
		return "", fmt.Errorf("auth: new registration token for user %s: the generator returned %d bytes, want 1 to %d", u.ID(), len(token), MaxRegistrationTokenLength)
	}
	return token, nil
}

// RequestNewCode issues a new one-time code to an unverified user and
// records [authevents.UserOtpRequested] with it, sealed. The previous code
// stops working and the attempt counter starts again.
//
// It returns [ErrAlreadyVerified] for a verified user and
// [ErrResendTooSoon] within [CodeResendInterval] of the last code issued;
// in both cases nothing is recorded, and neither is the caller's fault.
func (u *User) RequestNewCode() error {
	now := u.f.clock()
	if u.status == StatusVerified {
		return ErrAlreadyVerified
	}
	return u.reissueCode(now, hashCode, func(issued issuedCode) aggregate.Event {
		return authevents.UserOtpRequested{
			UserID:        u.ID(),
			Email:         u.email.String(),
			EncryptedCode: issued.sealed,
			CodeExpiresAt: issued.otp.expiresAt,
			RequestedAt:   now,
		}
	})
}

// reissueCode issues a new code hashed with hash, once the last one is
// [CodeResendInterval] old ([ErrResendTooSoon] before), and records the
// event that mails it; the previous code stops working.
func (u *User) reissueCode(now time.Time, hash func(key []byte, userID, code string) []byte, event func(issuedCode) aggregate.Event) error {
	if now.Before(u.code.issuedAt.Add(CodeResendInterval)) {
		return ErrResendTooSoon
	}
	issued, err := u.newCodeHashed(now, hash)
	if err != nil {
		return err
	}
	if err := u.Record(event(issued)); err != nil {
		return err
	}
	u.code.hash = issued.otp.hash
	return nil
}

// Authenticate checks a log-in: the password first, then the status. It
// returns [ErrInvalidCredentials] for a wrong password and
// [ErrNotVerified] for the right password of an unverified user. Any other
// error means the stored hash is broken (a server fault).
func (u *User) Authenticate(password string, hasher PasswordHasher) error {
	if err := u.checkPassword(password, hasher); err != nil {
		if errors.Is(err, valueobject.ErrPasswordMismatch) {
			return ErrInvalidCredentials
		}
		return err
	}
	if u.status != StatusVerified {
		return ErrNotVerified
	}
	return nil
}

// ChangePassword replaces the password and records
// [authevents.PasswordChanged]. current must be the present password
// (else a [*valueobject.Error] for "currentPassword" wrapping
// [ErrWrongPassword]); next must differ from it (ErrSamePassword) and from
// the email address (valueobject.ErrWeakPassword), both reported for
// "newPassword". Only verified users can change their password
// ([ErrNotVerified]). Afterwards the old password no longer authenticates.
func (u *User) ChangePassword(current string, next valueobject.Password, hasher PasswordHasher) error {
	if u.status != StatusVerified {
		return ErrNotVerified
	}
	if next.IsZero() {
		return &valueobject.Error{Field: "newPassword", Reason: "must not be empty", Err: valueobject.ErrEmpty}
	}
	if err := u.checkPassword(current, hasher); err != nil {
		if errors.Is(err, valueobject.ErrPasswordMismatch) {
			return &valueobject.Error{Field: "currentPassword", Reason: "is not correct", Err: ErrWrongPassword}
		}
		return err
	}
	if err := valueobject.DefaultPasswordPolicy.Validate(next.Reveal(), u.email.String(), u.email.Local()); errors.Is(err, valueobject.ErrWeakPassword) {
		return valueobject.WithField(err, "newPassword")
	}
	if current == next.Reveal() {
		return &valueobject.Error{Field: "newPassword", Reason: "must differ from the current password", Err: ErrSamePassword}
	}
	hash, err := hasher.Hash(next)
	if err != nil {
		return fmt.Errorf("auth: change password of user %s: %w", u.ID(), err)
	}
	now := u.f.clock()
	if err := u.Record(authevents.PasswordChanged{UserID: u.ID(), Email: u.email.String(), ChangedAt: now}); err != nil {
		return err
	}
	u.passwordHash = hash
	return nil
}

// RequestPasswordReset issues a password reset code to a verified user and
// records [authevents.PasswordResetRequested] with it, sealed, so that it
// is mailed. The code follows the rules of verification codes ([CodeTTL],
// [MaxCodeAttempts], [CodeResendInterval]) and is stored hashed under a
// label of its own; a previous reset code stops working.
//
// It returns [ErrNotVerified] for an unverified user and
// [ErrResendTooSoon] within [CodeResendInterval] of the last code; in both
// cases nothing is recorded, and the caller answers as if a code was sent.
func (u *User) RequestPasswordReset() error {
	now := u.f.clock()
	if u.status != StatusVerified {
		return ErrNotVerified
	}
	return u.reissueCode(now, hashResetCode, func(issued issuedCode) aggregate.Event {
		return authevents.PasswordResetRequested{
			UserID:        u.ID(),
			Email:         u.email.String(),
			EncryptedCode: issued.sealed,
			CodeExpiresAt: issued.otp.expiresAt,
			RequestedAt:   now,
		}
	})
}

// ResetPassword sets the password to next if code is the current reset
// code, and records [authevents.PasswordChanged], as [User.ChangePassword]
// does: the credential version moves on, so every older access token is
// revoked, and the reset code is used up.
//
// It fails with [ErrInvalidCode] for an unverified user, when there is no
// reset code, and for a wrong code; [ErrTooManyAttempts] once the code has
// had [MaxCodeAttempts] wrong tries; [ErrCodeExpired] for the right code
// after [CodeTTL]; a [*valueobject.Error] for "newPassword" when the policy
// refuses next. A wrong code is a failed attempt that must be stored:
// ResetPassword records [authevents.PasswordResetFailed] before it returns
// ErrInvalidCode, and the caller saves the user although the reset failed.
func (u *User) ResetPassword(code string, next valueobject.Password, hasher PasswordHasher) error {
	now := u.f.clock()
	switch {
	case u.status != StatusVerified, u.code.hash == nil:
		return ErrInvalidCode
	case u.code.failures >= MaxCodeAttempts:
		return ErrTooManyAttempts
	}
	if !u.f.matches(hashResetCode, u.ID(), code, u.code.hash) {
		if err := u.Record(authevents.PasswordResetFailed{
			UserID:   u.ID(),
			Attempt:  u.code.failures + 1,
			FailedAt: now,
		}); err != nil {
			return err
		}
		return ErrInvalidCode
	}
	if !now.Before(u.code.expiresAt) {
		return ErrCodeExpired
	}
	if next.IsZero() {
		return &valueobject.Error{Field: "newPassword", Reason: "must not be empty", Err: valueobject.ErrEmpty}
	}
	if err := valueobject.DefaultPasswordPolicy.Validate(next.Reveal(), u.email.String(), u.email.Local()); errors.Is(err, valueobject.ErrWeakPassword) {
		return valueobject.WithField(err, "newPassword")
	}
	hash, err := hasher.Hash(next)
	if err != nil {
		return fmt.Errorf("auth: reset password of user %s: %w", u.ID(), err)
	}
	if err := u.Record(authevents.PasswordChanged{UserID: u.ID(), Email: u.email.String(), ChangedAt: now}); err != nil {
		return err
	}
	u.passwordHash = hash
	return nil
}

func (u *User) checkPassword(plain string, hasher PasswordHasher) error {
	err := hasher.Verify(u.passwordHash, plain)
	if err != nil && !errors.Is(err, valueobject.ErrPasswordMismatch) {
		return fmt.Errorf("auth: user %s: stored password hash: %w", u.ID(), err)
	}
	return err
}

// issuedCode is a new code before the event that carries it is recorded.
type issuedCode struct {
	otp    otp
	sealed string
}

func (u *User) newCode(now time.Time) (issuedCode, error) {
	return u.newCodeHashed(now, hashCode)
}

func (u *User) newCodeHashed(now time.Time, hash func(key []byte, userID, code string) []byte) (issuedCode, error) {
	code, err := u.f.codes()
	if err != nil {
		return issuedCode{}, fmt.Errorf("auth: new code for user %s: %w", u.ID(), err)
	}
	if !IsCode(code) {
		return issuedCode{}, fmt.Errorf("auth: new code for user %s: the generator returned %d characters that are not %d digits", u.ID(), len(code), CodeDigits)
	}
	sealed, err := u.f.sealer.Seal(code, u.ID())
	if err != nil {
		return issuedCode{}, fmt.Errorf("auth: seal code for user %s: %w", u.ID(), err)
	}
	return issuedCode{
		otp:    otp{hash: hash(u.f.codeKey, u.ID(), code), issuedAt: now, expiresAt: now.Add(CodeTTL)},
		sealed: sealed,
	}, nil
}

// Expire ends an account whose address was never verified: it records
// [authevents.AccountExpired], after which the account answers to nothing
// (its address is released, a log-in with it is refused as for an unknown
// address) and the address can be registered afresh. The service calls it
// when the deadline set at registration passes (UNVERIFIED_ACCOUNT_TTL).
//
// It fails with [ErrAlreadyVerified] for a verified user. For an account
// that expired already it does nothing and returns nil, so a deadline that
// fires twice is harmless.
func (u *User) Expire() error {
	switch u.status {
	case StatusVerified:
		return ErrAlreadyVerified
	case StatusExpired:
		return nil
	}
	return u.Record(authevents.AccountExpired{UserID: u.ID(), ExpiredAt: u.f.clock()})
}

// IsExpired reports whether the account expired unverified ([User.Expire]).
func (u *User) IsExpired() bool { return u.status == StatusExpired }

// apply changes the state that the events describe. Secrets (the password
// hash, the code hash) are not in any event, because events are published;
// the methods set them right after recording the event that makes them
// valid.
func (u *User) apply(e aggregate.Event) error {
	switch e := e.(type) {
	case authevents.UserRegistered:
		email, err := valueobject.ParseEmail(e.Email)
		if err != nil {
			return err
		}
		u.email = email
		u.status = StatusUnverified
		u.createdAt = e.RegisteredAt
		u.code = otp{issuedAt: e.RegisteredAt, expiresAt: e.CodeExpiresAt}
	case authevents.UserOtpRequested:
		u.code = otp{issuedAt: e.RequestedAt, expiresAt: e.CodeExpiresAt} // the old code dies here
	case authevents.CodeVerificationFailed:
		u.code.failures = e.Attempt
	case authevents.UserVerified:
		u.status = StatusVerified
		u.verifiedAt = e.VerifiedAt
		u.code = otp{}
		u.registrationHash = nil
	case authevents.PasswordChanged:
		u.passwordChangedAt = e.ChangedAt
		u.code = otp{} // a pending reset code dies with the old password
	case authevents.PasswordResetRequested:
		u.code = otp{issuedAt: e.RequestedAt, expiresAt: e.CodeExpiresAt} // the old reset code dies here
	case authevents.PasswordResetFailed:
		u.code.failures = e.Attempt
	case authevents.AccountExpired:
		u.status = StatusExpired
		u.code = otp{}
		u.registrationHash = nil
	default:
		return fmt.Errorf("unknown event %T", e)
	}
	return nil
}
