package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

// Source identifies the event a handler is given: its ID becomes the job
// ID, its time the email's "when". With dddkit's eventbus:
//
//	eventbus.HandleOnce(router, "notification", inbox, func(ctx context.Context, e authevents.UserRegistered, env aggregate.Envelope) error {
//		return handlers.UserRegistered(ctx, e, app.Source{EventID: env.ID, OccurredAt: env.OccurredAt})
//	})
//
// (turning an error for which IsPermanent holds into eventbus.Permanent).
type Source struct {
	EventID    string
	OccurredAt time.Time
}

// EventHandlers turn auth events into email jobs, one per event.
type EventHandlers struct {
	queue EmailJobQueue
	codes CodeOpener
}

// NewEventHandlers returns handlers queueing on queue; codes checks that
// the sealed code of an event opens before a job is queued for it.
func NewEventHandlers(queue EmailJobQueue, codes CodeOpener) (*EventHandlers, error) {
	var errs []error
	if queue == nil {
		errs = append(errs, errors.New("notification: NewEventHandlers: nil queue"))
	}
	if codes == nil {
		errs = append(errs, errors.New("notification: NewEventHandlers: nil code opener"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &EventHandlers{queue: queue, codes: codes}, nil
}

// UserRegistered queues the verification code email.
func (h *EventHandlers) UserRegistered(ctx context.Context, e authevents.UserRegistered, src Source) error {
	return h.enqueue(ctx, domain.EmailJob{
		ID: src.EventID, Kind: domain.KindVerificationCode, To: e.Email, UserID: e.UserID,
		EncryptedCode: e.EncryptedCode, CodeExpiresAt: e.CodeExpiresAt, OccurredAt: first(e.RegisteredAt, src.OccurredAt),
	})
}

// UserOtpRequested queues the new code email.
func (h *EventHandlers) UserOtpRequested(ctx context.Context, e authevents.UserOtpRequested, src Source) error {
	return h.enqueue(ctx, domain.EmailJob{
		ID: src.EventID, Kind: domain.KindNewCode, To: e.Email, UserID: e.UserID,
		EncryptedCode: e.EncryptedCode, CodeExpiresAt: e.CodeExpiresAt, OccurredAt: first(e.RequestedAt, src.OccurredAt),
	})
}

// UserVerified queues the welcome email.
func (h *EventHandlers) UserVerified(ctx context.Context, e authevents.UserVerified, src Source) error {
	return h.enqueue(ctx, domain.EmailJob{
		ID: src.EventID, Kind: domain.KindWelcome, To: e.Email, UserID: e.UserID, OccurredAt: first(e.VerifiedAt, src.OccurredAt),
	})
}

// PasswordChanged queues the security notice.
func (h *EventHandlers) PasswordChanged(ctx context.Context, e authevents.PasswordChanged, src Source) error {
	return h.enqueue(ctx, domain.EmailJob{
		ID: src.EventID, Kind: domain.KindPasswordChanged, To: e.Email, UserID: e.UserID, OccurredAt: first(e.ChangedAt, src.OccurredAt),
	})
}

// PasswordResetRequested queues the password reset code email.
func (h *EventHandlers) PasswordResetRequested(ctx context.Context, e authevents.PasswordResetRequested, src Source) error {
	return h.enqueue(ctx, domain.EmailJob{
		ID: src.EventID, Kind: domain.KindPasswordReset, To: e.Email, UserID: e.UserID,
		EncryptedCode: e.EncryptedCode, CodeExpiresAt: e.CodeExpiresAt, OccurredAt: first(e.RequestedAt, src.OccurredAt),
	})
}

func (h *EventHandlers) enqueue(ctx context.Context, job domain.EmailJob) error {
	if err := job.Validate(); err != nil {
		return Permanent(err)
	}
	if job.Kind.HasCode() {
		// Fail now, before a job exists, if the code cannot be opened
		// (another key, a corrupted field): no retry will fix that. The
		// job keeps the sealed code; the worker opens it again to render.
		if _, err := h.codes.Open(job.EncryptedCode, job.UserID); err != nil {
			return Permanent(fmt.Errorf("notification: event %s: the code does not decrypt: %w", job.ID, err))
		}
	}
	if err := h.queue.Enqueue(ctx, job); err != nil {
		return fmt.Errorf("notification: queue %s email for event %s: %w", job.Kind, job.ID, err)
	}
	return nil
}

func first(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}
