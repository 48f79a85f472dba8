package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

// Mailer carries out email jobs: it opens the job's code, renders the
// email and sends it. Its Deliver method is the work function of a job
// queue.
type Mailer struct {
	sender    EmailSender
	codes     CodeOpener
	templates *domain.Templates
}

// NewMailer returns a Mailer sending through sender.
func NewMailer(sender EmailSender, codes CodeOpener, templates *domain.Templates) (*Mailer, error) {
	var errs []error
	if sender == nil {
		errs = append(errs, errors.New("notification: NewMailer: nil sender"))
	}
	if codes == nil {
		errs = append(errs, errors.New("notification: NewMailer: nil code opener"))
	}
	if templates == nil {
		errs = append(errs, errors.New("notification: NewMailer: nil templates"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Mailer{sender: sender, codes: codes, templates: templates}, nil
}

// Deliver renders and sends the email of job. A job that cannot be
// rendered (invalid, or its code does not open) fails permanently; the
// sender's errors are returned as they are, classified by the sender.
func (m *Mailer) Deliver(ctx context.Context, job domain.EmailJob) error {
	var code string
	if job.Kind.HasCode() {
		var err error
		if code, err = m.codes.Open(job.EncryptedCode, job.UserID); err != nil {
			return Permanent(fmt.Errorf("notification: job %s: the code does not decrypt: %w", job.ID, err))
		}
	}
	email, err := m.templates.Render(job, code)
	if err != nil {
		return Permanent(err)
	}
	if err := m.sender.Send(ctx, email); err != nil {
		return fmt.Errorf("notification: send %s email for job %s: %w", job.Kind, job.ID, err)
	}
	return nil
}
