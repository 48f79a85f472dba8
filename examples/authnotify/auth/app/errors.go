package app

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dddkit/dddkit/valueobject"
)

var (
	// ErrInvalidInput is wrapped by every error about the shape of a
	// command's or query's input; valueobject.FieldErrors lists the
	// fields.
	ErrInvalidInput = errors.New("auth: invalid input")

	// ErrInvalidToken is wrapped by every error of [Tokens.Verify] and
	// of the [Authenticate] query.
	ErrInvalidToken = errors.New("auth: invalid access token")

	// ErrTokenExpired is wrapped, together with ErrInvalidToken, by the
	// error for a well-formed token past its expiry.
	ErrTokenExpired = errors.New("auth: access token has expired")

	// ErrTokenRevoked is wrapped, together with ErrInvalidToken, by the
	// error for a token issued before the user's password last changed.
	ErrTokenRevoked = errors.New("auth: access token was revoked by a password change")
)

// invalid marks err, a tree of *valueobject.Error, as bad input.
func invalid(errs ...error) error {
	if err := errors.Join(errs...); err != nil {
		return &inputError{err: err}
	}
	return nil
}

// inputError is the error of [invalid]: it wraps [ErrInvalidInput] and
// the field errors, and its message, which the bus logs, withholds what
// the reason for an email address says about it (a domain label, a
// character): logs never show an address, not even in part. The HTTP
// answer still gets every reason, through valueobject.FieldErrors.
type inputError struct{ err error }

func (e *inputError) Error() string {
	fields := valueobject.FieldErrors(e.err)
	if len(fields) == 0 {
		return ErrInvalidInput.Error() + ": " + e.err.Error()
	}
	msgs := make([]string, 0, len(fields))
	for _, fe := range fields {
		if fe.Field != "email" {
			msgs = append(msgs, fe.Error())
			continue
		}
		what := "invalid"
		if fe.Err != nil {
			what = strings.TrimPrefix(fe.Err.Error(), "valueobject: ")
		}
		msgs = append(msgs, "valueobject: email: "+what)
	}
	return ErrInvalidInput.Error() + ": " + strings.Join(msgs, "\n")
}

func (e *inputError) Unwrap() []error { return []error{ErrInvalidInput, e.err} }

// Secret is a string that never shows: passwords in commands and queries.
// Every fmt verb and slog print "[REDACTED]", also when the Secret is a
// field of a struct being printed.
type Secret string

const redacted = "[REDACTED]"

// Reveal returns the text.
func (s Secret) Reveal() string { return string(s) }

// String returns "[REDACTED]".
func (Secret) String() string { return redacted }

// GoString returns `app.Secret("[REDACTED]")`.
func (Secret) GoString() string { return `app.Secret("` + redacted + `")` }

// Format prints "[REDACTED]" for every verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// MarshalText implements encoding.TextMarshaler (and so JSON) with
// "[REDACTED]".
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// LogValue implements slog.LogValuer.
func (Secret) LogValue() slog.Value { return slog.StringValue(redacted) }
