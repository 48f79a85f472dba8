package app

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/valueobject"
)

// RegisterUser creates an account and emails it a verification code. For
// an address whose account is not verified yet, it replaces that pending
// registration (password, code, token) instead.
type RegisterUser struct {
	Email    string
	Password Secret
}

// CommandName implements the cqrs naming convention.
func (RegisterUser) CommandName() string { return "auth.register_user" }

// Validate checks the input: a valid email address and a password the
// policy accepts, which may not be the address itself.
func (c RegisterUser) Validate() error {
	_, _, err := c.parse()
	return err
}

func (c RegisterUser) parse() (valueobject.Email, valueobject.Password, error) {
	email, emailErr := valueobject.ParseEmail(c.Email)
	var personal []string
	if emailErr == nil {
		personal = []string{email.String(), email.Local()}
	}
	pw, pwErr := valueobject.NewPassword(c.Password.Reveal(), personal...)
	return email, pw, invalid(emailErr, pwErr)
}

// Registration is the result of [RegisterUser].
type Registration struct {
	UserID string
	Email  string
	// RegistrationToken proves, with the mailed code, that whoever
	// verifies is whoever registered; it is shown once and stored hashed.
	RegistrationToken Secret
}

// VerifyEmail confirms an address with the code that was emailed to it
// and the token that registering it returned.
type VerifyEmail struct {
	Email             string
	Code              string
	RegistrationToken Secret
}

// CommandName implements the cqrs naming convention.
func (VerifyEmail) CommandName() string { return "auth.verify_email" }

// Validate checks the input: a valid address and a 6-digit code.
func (c VerifyEmail) Validate() error {
	_, err := c.parse()
	return err
}

func (c VerifyEmail) parse() (valueobject.Email, error) {
	email, err := valueobject.ParseEmail(c.Email)
	return email, invalid(err, checkCode(c.Code), checkRegistrationToken(c.RegistrationToken))
}

func checkRegistrationToken(tok Secret) error {
	switch s := tok.Reveal(); {
	case s == "":
		return &valueobject.Error{Field: "registrationToken", Reason: "must not be empty", Err: valueobject.ErrEmpty}
	case len(s) > domain.MaxRegistrationTokenLength:
		return &valueobject.Error{Field: "registrationToken", Reason: fmt.Sprintf("must be at most %d characters long", domain.MaxRegistrationTokenLength), Err: valueobject.ErrTooLong}
	}
	return nil
}

func checkCode(code string) error {
	switch {
	case code == "":
		return &valueobject.Error{Field: "code", Reason: "must not be empty", Err: valueobject.ErrEmpty}
	case !domain.IsCode(code):
		return &valueobject.Error{Field: "code", Reason: "must be 6 digits", Err: valueobject.ErrInvalid}
	}
	return nil
}

// ResendCode asks for a new verification code. It succeeds for any valid
// address, whether or not there is an unverified account for it.
type ResendCode struct {
	Email string
}

// CommandName implements the cqrs naming convention.
func (ResendCode) CommandName() string { return "auth.resend_code" }

// Validate checks that Email is a valid address.
func (c ResendCode) Validate() error {
	_, err := valueobject.ParseEmail(c.Email)
	return invalid(err)
}

// ChangePassword replaces the password of the user UserID (taken from the
// access token, never from the request body).
type ChangePassword struct {
	UserID          string
	CurrentPassword Secret
	NewPassword     Secret
}

// CommandName implements the cqrs naming convention.
func (ChangePassword) CommandName() string { return "auth.change_password" }

// Validate checks the input: a user ID, a current password (not empty,
// at most the policy's maximum length) and a new password the policy
// accepts.
func (c ChangePassword) Validate() error {
	_, _, err := c.parse()
	return err
}

func (c ChangePassword) parse() (valueobject.ID, valueobject.Password, error) {
	id, idErr := valueobject.ParseID(c.UserID)
	curErr := checkPresented("currentPassword", c.CurrentPassword)
	next, nextErr := valueobject.NewPassword(c.NewPassword.Reveal())
	return id, next, invalid(valueobject.WithField(idErr, "userId"), curErr, valueobject.WithField(nextErr, "newPassword"))
}

// RequestPasswordReset asks for a password reset code. It succeeds for any
// valid address, whether or not there is a verified account for it; only a
// verified account is mailed a code.
type RequestPasswordReset struct {
	Email string
}

// CommandName implements the cqrs naming convention.
func (RequestPasswordReset) CommandName() string { return "auth.request_password_reset" }

// Validate checks that Email is a valid address.
func (c RequestPasswordReset) Validate() error {
	_, err := valueobject.ParseEmail(c.Email)
	return invalid(err)
}

// ResetPassword sets a new password with the code that
// [RequestPasswordReset] mailed.
type ResetPassword struct {
	Email       string
	Code        string
	NewPassword Secret
}

// CommandName implements the cqrs naming convention.
func (ResetPassword) CommandName() string { return "auth.reset_password" }

// Validate checks the input: a valid address, a 6-digit code and a new
// password the policy accepts (at most its maximum length, checked before
// any hashing).
func (c ResetPassword) Validate() error {
	_, _, err := c.parse()
	return err
}

func (c ResetPassword) parse() (valueobject.Email, valueobject.Password, error) {
	email, emailErr := valueobject.ParseEmail(c.Email)
	var personal []string
	if emailErr == nil {
		personal = []string{email.String(), email.Local()}
	}
	next, nextErr := valueobject.NewPassword(c.NewPassword.Reveal(), personal...)
	return email, next, invalid(emailErr, checkCode(c.Code), valueobject.WithField(nextErr, "newPassword"))
}

// Login checks an address and password and returns an access token. It is
// a query: it changes nothing.
type Login struct {
	Email    string
	Password Secret
	// ClientAddress is the client's network address, for the per-address
	// limit of Deps.Throttle.
	ClientAddress string
}

// QueryName implements the cqrs naming convention.
func (Login) QueryName() string { return "auth.login" }

// Validate checks that Email is a valid address and Password is not
// empty nor longer than the policy's maximum. The rest of the password
// policy is not applied: it is checked when a password is set, so
// tightening it later locks nobody out.
func (q Login) Validate() error {
	_, err := q.parse()
	return err
}

func (q Login) parse() (valueobject.Email, error) {
	email, err := valueobject.ParseEmail(q.Email)
	return email, invalid(err, checkPresented("password", q.Password))
}

// checkPresented checks a password that is to be compared with a stored
// hash (at log-in, the current password when changing it): not empty,
// valid UTF-8 and at most [valueobject.DefaultPasswordPolicy]'s MaxLength
// characters, the limit every password was set under, with the errors
// valueobject.NewPassword gives for those. It runs before any hashing, so
// a huge password costs no argon2 work.
func checkPresented(field string, pw Secret) error {
	maxLen := valueobject.DefaultPasswordPolicy.MaxLength
	s := pw.Reveal()
	switch {
	case s == "":
		return &valueobject.Error{Field: field, Reason: "must not be empty", Err: valueobject.ErrEmpty}
	case len(s)/4 > maxLen: // a character takes at most 4 bytes: bounded before counting
		return &valueobject.Error{Field: field, Reason: fmt.Sprintf("must be at most %d characters long", maxLen), Err: valueobject.ErrTooLong}
	case !utf8.ValidString(s):
		return &valueobject.Error{Field: field, Reason: "must be valid UTF-8 text", Err: valueobject.ErrInvalid}
	case utf8.RuneCountInString(s) > maxLen:
		return &valueobject.Error{Field: field, Reason: fmt.Sprintf("must be at most %d characters long", maxLen), Err: valueobject.ErrTooLong}
	}
	return nil
}

// Authenticate checks an access token: its signature and expiry
// ([Tokens.Verify]), that its user exists, and that its credential
// version is the user's current one. Its result is the token's [Claims];
// every failure wraps [ErrInvalidToken].
type Authenticate struct {
	Token Secret
}

// QueryName implements the cqrs naming convention.
func (Authenticate) QueryName() string { return "auth.authenticate" }

// Me returns the account of the user UserID (from the access token).
type Me struct {
	UserID string
}

// QueryName implements the cqrs naming convention.
func (Me) QueryName() string { return "auth.me" }

// Validate checks that UserID is a UUID.
func (q Me) Validate() error {
	_, err := q.parse()
	return err
}

func (q Me) parse() (valueobject.ID, error) {
	id, err := valueobject.ParseID(q.UserID)
	return id, invalid(valueobject.WithField(err, "userId"))
}

// UserView is the result of [Me].
type UserView struct {
	ID         string
	Email      string
	Status     string     // "unverified" or "verified"
	CreatedAt  time.Time  //
	VerifiedAt *time.Time // nil while unverified
}

func viewOf(u *domain.User) UserView {
	v := UserView{ID: u.ID(), Email: u.Email().String(), Status: string(u.Status()), CreatedAt: u.CreatedAt()}
	if at := u.VerifiedAt(); !at.IsZero() {
		v.VerifiedAt = &at
	}
	return v
}
