package app

import (
	"context"
	"errors"
	"time"

	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

// EmailJobQueue queues email jobs. Enqueue must be idempotent by job ID:
// a second job with the same ID is dropped (and is not an error).
type EmailJobQueue interface {
	Enqueue(ctx context.Context, job domain.EmailJob) error
}

// EmailSender sends one rendered email. It should pass
// email.IdempotencyKey to the provider and classify failures with
// [Permanent] and [RetryAfter].
type EmailSender interface {
	Send(ctx context.Context, email domain.Email) error
}

// CodeOpener decrypts a sealed one-time code; the user ID is the
// associated data. *fieldcrypt.Cipher implements it.
type CodeOpener interface {
	Open(sealed, associatedData string) (string, error)
}

// ErrPermanent is matched by every error made with [Permanent].
var ErrPermanent = errors.New("notification: permanent failure")

// Permanent marks err as one that retrying cannot fix. errors.Is sees both
// err and [ErrPermanent] through the result. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// IsPermanent reports whether err, or an error it wraps, was made with
// [Permanent].
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// RetryAfterError is a retryable failure with the provider's hint of when
// to try again (an HTTP 429's or 503's Retry-After).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string {
	return e.Err.Error() + " (retry after " + e.After.String() + ")"
}

// Unwrap returns Err.
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err with a retry hint. RetryAfter(nil, d) is nil.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, After: after}
}

// RetryAfterHint returns the hint of a [RetryAfterError] in err's tree.
func RetryAfterHint(err error) (time.Duration, bool) {
	if e, ok := errors.AsType[*RetryAfterError](err); ok && e.After > 0 {
		return e.After, true
	}
	return 0, false
}
