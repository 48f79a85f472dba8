// Package app is the notification module's application layer.
//
// [EventHandlers] turn each auth event into exactly one [domain.EmailJob]
// on an [EmailJobQueue]; [Mailer] is the job's worker: it opens the sealed
// code, renders the email and hands it to an [EmailSender]. The ports are
// small interfaces; adapters implement them (an in-process queue and a dev
// mailbox in the embedded default, River and Resend in production).
//
// # Exactly one email per event
//
// The job's ID is the event's ID. Queues keep job IDs unique (River: a
// unique job inserted in the inbox transaction; the in-process queue: a
// set of seen IDs), so an event delivered twice queues one job, and
// senders pass the job ID to the provider as idempotency key, so a job
// that runs twice (a crash after sending) sends one email.
//
// # Errors
//
// A sender classifies its failures: [Permanent] for those no retry can
// fix (a provider's 4xx other than 429), [RetryAfter] for a retryable one
// with the provider's hint, anything else is retried with backoff. Event
// handlers return Permanent errors for events they can never turn into an
// email (no address, a code that does not decrypt), which an event bus
// sends to its dead-letter topic at once.
package app
