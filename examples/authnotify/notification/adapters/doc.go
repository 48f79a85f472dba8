// Package adapters holds the notification module's adapters.
//
// Production:
//
//   - [Resend], an [app.EmailSender] on Resend's official SDK: the job ID
//     (the event ID) is the idempotency key; 429 and 5xx are retryable,
//     with the retry-after header as hint; other 4xx are permanent.
//   - [RiverQueue], an [app.EmailJobQueue] that inserts River jobs
//     ([EmailJobArgs], unique by event ID) in the transaction of the
//     caller's unit of work — the event handler's inbox transaction,
//     which postgres.TxFromContext returns — and [EmailWorker], the River
//     worker that runs app.Mailer.Deliver: permanent errors cancel the job,
//     retry-after hints snooze it, other errors use River's backoff.
//
// Embedded default:
//
//   - [DevMailbox], an [app.EmailSender] that keeps and logs every email
//     and shows them over HTTP (GET /dev/emails);
//   - [JobQueue], an in-process [app.EmailJobQueue] with the retry
//     behaviour of the production one: retryable errors are retried with
//     jittered exponential backoff or after the provider's retry-after
//     hint, permanent ones fail at once.
package adapters
