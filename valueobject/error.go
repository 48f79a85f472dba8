package valueobject

import (
	"errors"
)

// Sentinel errors. Every [*Error] returned by this package wraps exactly one
// of them, so callers can branch with errors.Is without parsing messages.
var (
	// ErrEmpty reports a required value that is empty (or only whitespace,
	// where the parser trims).
	ErrEmpty = errors.New("valueobject: empty")

	// ErrTooShort reports a value below its minimum length.
	ErrTooShort = errors.New("valueobject: too short")

	// ErrTooLong reports a value above its maximum length.
	ErrTooLong = errors.New("valueobject: too long")

	// ErrInvalid reports a value of the wrong form: a bad character, a
	// missing "@", a UUID that is not in canonical text form, and so on.
	ErrInvalid = errors.New("valueobject: invalid")

	// ErrWeakPassword reports a password that has an acceptable length but
	// is trivial to guess: one repeated character, a simple sequence, a
	// very common password, or the user's own email or name. See
	// [PasswordPolicy].
	ErrWeakPassword = errors.New("valueobject: weak password")

	// ErrPasswordMismatch is returned by [Hasher.Verify] when the password
	// does not match the hash. It is returned bare, not inside an [*Error]:
	// a wrong password at login is an authentication failure (HTTP 401),
	// not a validation failure of a field.
	ErrPasswordMismatch = errors.New("valueobject: password does not match")

	// ErrUnknownHashFormat reports a stored password hash that is not an
	// argon2id version 19 hash in PHC string format, for example a bcrypt
	// hash ("$2a$...") or an argon2i hash. A service migrating from another
	// algorithm can use it to fall back to the old verifier.
	ErrUnknownHashFormat = errors.New("valueobject: unknown password hash format")

	// ErrMalformedHash reports a stored password hash that claims to be
	// "$argon2id$v=19$..." but is broken: a bad parameter list, parameters
	// out of the accepted bounds, or a salt or key that is not valid base64
	// of a sane length.
	ErrMalformedHash = errors.New("valueobject: malformed password hash")
)

// Error is the error returned by every constructor and parser of this
// package. It names the input field the value came from and says, in words
// fit for an end user, what is wrong with it:
//
//	valueobject: email: must contain exactly one "@"
//
// Field and Reason map directly onto a {"field", "message"} entry of an
// HTTP 400 problem+json response. Err is the sentinel ([ErrEmpty],
// [ErrInvalid], ...) that classifies the failure; errors.Is sees it through
// [Error.Unwrap].
//
// The constructors use the field names "email", "id", "password" and
// "passwordHash". Use [WithField] when the value arrives under another name,
// such as "newPassword" or "ownerId".
type Error struct {
	Field  string // input field, e.g. "email"; may be empty
	Reason string // what is wrong, e.g. `must contain exactly one "@"`
	Err    error  // the sentinel or underlying cause; may be nil
}

// Error returns "valueobject: <field>: <reason>", or "valueobject: <reason>"
// when Field is empty.
func (e *Error) Error() string {
	if e.Field == "" {
		return "valueobject: " + e.Reason
	}
	return "valueobject: " + e.Field + ": " + e.Reason
}

// Unwrap returns Err, so that errors.Is(err, ErrInvalid) and the like work.
func (e *Error) Unwrap() error { return e.Err }

// Refusal returns true: a value that fails validation is bad input, a
// refusal of the request rather than a failure of the system. The cqrs
// package (cqrs.IsRefusal, and so its logging middleware) and HTTP layers
// use it to answer 4xx and log at INFO, without this package importing
// them.
func (e *Error) Refusal() bool { return true }

// WithField returns err with its field name set to field. When err is, or
// wraps, an [*Error], the result is a new [*Error] with the same Reason and
// the new Field; the original is not modified (it may be shared) and stays
// reachable through Unwrap. Any other non-nil error becomes an [*Error] whose
// Reason is err.Error() and whose Err is err. WithField(nil, f) is nil.
//
//	pw, err := valueobject.NewPassword(req.NewPassword)
//	if err != nil {
//		return valueobject.WithField(err, "newPassword")
//	}
func WithField(err error, field string) error {
	if err == nil {
		return nil
	}
	var ve *Error
	if !errors.As(err, &ve) {
		return &Error{Field: field, Reason: err.Error(), Err: err}
	}
	if ve == err { //nolint:errorlint // identity check: is err itself the *Error?
		// Nothing wraps it: keep the chain short so that the sentinel is
		// the direct cause.
		return &Error{Field: field, Reason: ve.Reason, Err: ve.Err}
	}
	return &Error{Field: field, Reason: ve.Reason, Err: err}
}

// FieldErrors returns every [*Error] in err's tree, in depth-first order, as
// errors.As would visit them. It looks through both Unwrap() error and
// Unwrap() []error (errors.Join, fmt.Errorf with several %w), so a command
// that validates several fields and joins the failures yields one entry per
// field. Below an [*Error] it does not descend: the outermost one is the one
// whose Field counts (see [WithField]). It returns nil when there is none.
func FieldErrors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if ve, ok := err.(*Error); ok { //nolint:errorlint // walking the tree by hand, one node at a time
			out = append(out, ve)
			return
		}
		switch u := err.(type) { //nolint:errorlint // as above
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// newError is shorthand used by the constructors.
func newError(field string, sentinel error, reason string) *Error {
	return &Error{Field: field, Reason: reason, Err: sentinel}
}
