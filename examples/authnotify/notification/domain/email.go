package domain

import (
	"errors"
	"fmt"
	"time"
)

// Kind is a kind of email.
type Kind string

// The kinds of email, one per auth event that causes one.
const (
	// KindVerificationCode carries the first code (UserRegistered).
	KindVerificationCode Kind = "verification_code"
	// KindNewCode carries a code asked for again (UserOtpRequested).
	KindNewCode Kind = "new_code"
	// KindWelcome greets a verified user (UserVerified).
	KindWelcome Kind = "welcome"
	// KindPasswordChanged is the security notice (PasswordChanged).
	KindPasswordChanged Kind = "password_changed"
	// KindPasswordReset carries a password reset code
	// (PasswordResetRequested).
	KindPasswordReset Kind = "password_reset"
)

// Kinds lists every kind.
func Kinds() []Kind {
	return []Kind{KindVerificationCode, KindNewCode, KindWelcome, KindPasswordChanged, KindPasswordReset}
}

// HasCode reports whether emails of kind k carry a one-time code.
func (k Kind) HasCode() bool {
	return k == KindVerificationCode || k == KindNewCode || k == KindPasswordReset
}

// Valid reports whether k is one of [Kinds].
func (k Kind) Valid() bool {
	switch k {
	case KindVerificationCode, KindNewCode, KindWelcome, KindPasswordChanged, KindPasswordReset:
		return true
	}
	return false
}

// EmailJob asks for one email to be sent. It is what an event handler
// queues and a worker carries out.
//
// ID is the ID of the event that caused the job: the queue keeps job IDs
// unique, so an event delivered twice still queues one job, and the email
// provider gets it as idempotency key, so a job run twice still sends one
// email. The one-time code stays sealed in the job (a job row in a
// database is as readable as an outbox row) and is opened only to render.
type EmailJob struct {
	ID     string
	Kind   Kind
	To     string
	UserID string
	// EncryptedCode is the sealed code, for kinds that carry one; the
	// user ID is the associated data.
	EncryptedCode string
	// CodeExpiresAt is when the code stops working.
	CodeExpiresAt time.Time
	// OccurredAt is when the event happened.
	OccurredAt time.Time
}

// Validate reports every missing or bad field at once.
func (j EmailJob) Validate() error {
	var errs []error
	if j.ID == "" {
		errs = append(errs, errors.New("no ID"))
	}
	if !j.Kind.Valid() {
		errs = append(errs, fmt.Errorf("unknown kind %q", j.Kind))
	}
	if j.To == "" {
		errs = append(errs, errors.New("no recipient"))
	}
	if j.UserID == "" {
		errs = append(errs, errors.New("no user ID"))
	}
	if j.Kind.HasCode() && j.EncryptedCode == "" {
		errs = append(errs, errors.New("no code"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("notification: invalid email job %q: %w", j.ID, err)
	}
	return nil
}

// Email is a rendered message, ready for an email provider.
type Email struct {
	To      string
	Subject string
	Text    string
	HTML    string
	// IdempotencyKey is the job ID: a provider that sees it twice sends
	// once.
	IdempotencyKey string
	Kind           Kind
}
