package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
	"github.com/dddkit/dddkit/postgres"
)

// River job settings of the email queue.
const (
	// EmailJobKind is the River kind of an email job. Stored in every job
	// row: never change it.
	EmailJobKind = "notification.email"
	// EmailQueue is the River queue email jobs go to.
	EmailQueue = "emails"
	// EmailMaxAttempts is how often an email job runs at most before River
	// discards it (snoozes for a provider's retry-after do not count).
	EmailMaxAttempts = 10
	// MaxSnoozes bounds how often one job honours a retry-after hint before
	// the failure counts as an attempt, so that a provider answering 429
	// forever cannot keep a job alive forever.
	MaxSnoozes = 20
)

// EmailJobArgs is the River job of one email: the [domain.EmailJob] in a
// stored form with JSON names of its own. It is unique by event ID: a
// second insert for the same event is skipped by River, whatever state the
// first job is in (until River's cleaner removes finished jobs, a day by
// default — longer than the inbox makes redeliveries likely).
type EmailJobArgs struct {
	EventID       string      `json:"eventId" river:"unique"`
	EmailKind     domain.Kind `json:"kind"`
	To            string      `json:"to"`
	UserID        string      `json:"userId"`
	EncryptedCode string      `json:"encryptedCode,omitempty"` // sealed, like in the event
	CodeExpiresAt time.Time   `json:"codeExpiresAt,omitzero"`
	OccurredAt    time.Time   `json:"occurredAt,omitzero"`
}

// Kind implements river.JobArgs.
func (EmailJobArgs) Kind() string { return EmailJobKind }

// InsertOpts implements river.JobArgsWithInsertOpts: the email queue,
// bounded attempts, unique by event ID in every state.
func (EmailJobArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		Queue:       EmailQueue,
		MaxAttempts: EmailMaxAttempts,
		UniqueOpts: river.UniqueOpts{
			ByArgs: true, // only the field tagged river:"unique": the event ID
			ByState: append(rivertype.UniqueOptsByStateDefault(),
				rivertype.JobStateCancelled, rivertype.JobStateDiscarded),
		},
	}
}

// NewEmailJobArgs returns the job arguments of job.
func NewEmailJobArgs(job domain.EmailJob) EmailJobArgs {
	return EmailJobArgs{
		EventID: job.ID, EmailKind: job.Kind, To: job.To, UserID: job.UserID,
		EncryptedCode: job.EncryptedCode, CodeExpiresAt: job.CodeExpiresAt, OccurredAt: job.OccurredAt,
	}
}

// Job returns the domain job of a.
func (a EmailJobArgs) Job() domain.EmailJob {
	return domain.EmailJob{
		ID: a.EventID, Kind: a.EmailKind, To: a.To, UserID: a.UserID,
		EncryptedCode: a.EncryptedCode, CodeExpiresAt: a.CodeExpiresAt, OccurredAt: a.OccurredAt,
	}
}

// Inserter is what [RiverQueue] needs of a River client.
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// RiverQueue queues email jobs in River, inside the transaction of the
// unit of work in the caller's context (postgres.TxFromContext): the event
// handler's inbox transaction, so that the inbox row and the job commit
// together or not at all.
type RiverQueue struct {
	client Inserter
}

// NewRiverQueue returns a queue inserting through client (a
// *river.Client[pgx.Tx]).
func NewRiverQueue(client Inserter) (*RiverQueue, error) {
	if client == nil {
		return nil, errors.New("notification: NewRiverQueue: nil client")
	}
	return &RiverQueue{client: client}, nil
}

// errNoTx is returned by Enqueue outside a unit of work: a job queued on
// its own would not commit with the inbox row.
var errNoTx = errors.New("notification: RiverQueue.Enqueue outside a unit of work (register the handlers with eventbus.HandleOnce and the PostgreSQL inbox)")

// Enqueue implements app.EmailJobQueue. A job for an event that has one
// already is skipped by River's uniqueness and is not an error.
func (q *RiverQueue) Enqueue(ctx context.Context, job domain.EmailJob) error {
	if err := job.Validate(); err != nil {
		return app.Permanent(err)
	}
	tx, ok := postgres.TxFromContext(ctx)
	if !ok {
		return app.Permanent(errNoTx)
	}
	if _, err := q.client.InsertTx(ctx, tx, NewEmailJobArgs(job), nil); err != nil {
		return fmt.Errorf("notification: insert email job %s: %w", job.ID, err)
	}
	return nil
}

// EmailWorker is the River worker of email jobs: it runs the work function
// (app.Mailer.Deliver) and turns its error into River's vocabulary —
// permanent failures cancel the job (logged), a provider's retry-after
// hint snoozes it for that long, anything else is retried with River's
// backoff until [EmailMaxAttempts].
type EmailWorker struct {
	river.WorkerDefaults[EmailJobArgs]
	work   WorkFunc
	logger *slog.Logger
}

// NewEmailWorker returns the worker; a nil logger means slog.Default().
func NewEmailWorker(work WorkFunc, logger *slog.Logger) (*EmailWorker, error) {
	if work == nil {
		return nil, errors.New("notification: NewEmailWorker: nil work function")
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &EmailWorker{work: work, logger: logger}, nil
}

// Timeout bounds one attempt.
func (w *EmailWorker) Timeout(*river.Job[EmailJobArgs]) time.Duration { return 30 * time.Second }

// Work implements river.Worker.
func (w *EmailWorker) Work(ctx context.Context, job *river.Job[EmailJobArgs]) error {
	err := w.work(ctx, job.Args.Job())
	if err == nil {
		return nil
	}
	attrs := []any{slog.String("job", job.Args.EventID), slog.String("kind", string(job.Args.EmailKind)), slog.Int("attempt", job.Attempt), slog.Any("error", err)}
	if app.IsPermanent(err) {
		w.logger.ErrorContext(ctx, "notification: email job failed for good", attrs...)
		return river.JobCancel(err)
	}
	if hint, ok := app.RetryAfterHint(err); ok && snoozes(job.Metadata) < MaxSnoozes {
		w.logger.WarnContext(ctx, "notification: email provider asked to retry later", append(attrs, slog.Duration("retryIn", hint))...)
		return river.JobSnooze(hint)
	}
	w.logger.WarnContext(ctx, "notification: email job failed, River will retry", attrs...)
	return err
}

// snoozes reads the number of snoozes River keeps in a job's metadata.
func snoozes(metadata []byte) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	_ = json.Unmarshal(metadata, &m)
	return m.Snoozes
}
