package outbox

import (
	"time"

	"github.com/dddkit/dddkit/aggregate"
)

// Status is the state of an outbox row.
type Status string

// The statuses of an outbox row.
const (
	// StatusPending rows wait to be published; a row whose publish failed
	// but has attempts left is pending with a NextAttemptAt.
	StatusPending Status = "pending"
	// StatusPublished rows were acknowledged by the publisher; they stay
	// until retention removes them (at once by default).
	StatusPublished Status = "published"
	// StatusFailed rows ran out of attempts. They block the later events
	// of their aggregate until an operator retries or discards them.
	StatusFailed Status = "failed"
	// StatusScheduled rows are deadlines ([Memory.Schedule], the
	// PostgreSQL outbox's Schedule) that are not due yet or that no relay
	// has taken up since they became due. When the relay finds one due,
	// it becomes pending at the end of the outbox's order (a new Seq) and
	// is published like any event; until then it can be cancelled or
	// replaced by its key, and it holds back no other event.
	StatusScheduled Status = "scheduled"
	// StatusDiscarded rows failed and an operator gave up on them: they
	// are never published and hold back nothing. The row keeps who
	// discarded it, when and why.
	StatusDiscarded Status = "discarded"
)

// Record is one outbox row as the operator API reports it.
type Record struct {
	// Seq is the row's position in the outbox; the relay publishes in Seq
	// order.
	Seq int64
	// Event is the stored envelope. Its Payload is nil: the payload is
	// kept as JSON in RawPayload, and the outbox does not know Go types.
	Event aggregate.Envelope
	// RawPayload is the JSON encoding of the event payload.
	RawPayload []byte
	// EventVersion is the schema version of the payload (1 unless the
	// payload type has an EventVersion() int method saying otherwise).
	EventVersion int
	Status       Status
	// Attempts counts failed publish attempts.
	Attempts int
	// LastError is the error of the last failed attempt, if any.
	LastError string
	// CreatedAt is when the row was written (the writing transaction's
	// start time).
	CreatedAt time.Time
	// NextAttemptAt is when a retrying row is due; zero otherwise.
	NextAttemptAt time.Time
	// DueAt is when a scheduled row (a deadline) becomes due; zero for
	// the other rows.
	DueAt time.Time
	// ScheduleKey is the key a deadline was scheduled under; "" for the
	// other rows.
	ScheduleKey string
	// PublishedAt is set for published rows.
	PublishedAt time.Time
	// DiscardedBy, DiscardReason and DiscardedAt are set for discarded
	// rows: who gave up on the event, why and when.
	DiscardedBy   string
	DiscardReason string
	DiscardedAt   time.Time
}

// Stats is a snapshot of an outbox.
type Stats struct {
	// Pending counts rows waiting to be published, Retrying included.
	Pending int64
	// Retrying counts pending rows with at least one failed attempt.
	Retrying int64
	// Failed counts rows that ran out of attempts.
	Failed int64
	// Scheduled counts deadlines waiting to become due (or to be taken
	// up by a relay once due); they are not in Pending.
	Scheduled int64
	// OldestPending is the age of the oldest pending row; zero when
	// nothing is pending. A growing value means the relay is not keeping
	// up, not running, or blocked.
	OldestPending time.Duration
}

// AttemptFailure describes one failed publish attempt of one event, as
// passed to [Hooks].OnAttemptFailed.
type AttemptFailure struct {
	// Event is the envelope (Payload nil) whose publish failed.
	Event aggregate.Envelope
	// Attempts is the number of failed attempts so far, this one included.
	Attempts int
	// Final is true when the event ran out of attempts and is now failed.
	Final bool
	// Err is the publisher's error.
	Err error
	// RetryIn is the delay before the next attempt (zero when Final).
	RetryIn time.Duration
}

// Hooks are optional callbacks through which a relay reports what it does,
// for metrics and logs. Each nil field is skipped. The callbacks run on the
// relay's goroutines, OnPublished, OnPublishError and OnAttemptFailed on
// those of the batches in flight ([RelayConfig].MaxInFlight), possibly at
// the same time: they must be safe for concurrent use, quick, and must not
// block.
type Hooks struct {
	// OnPublished is called after the publisher acknowledged events, with
	// the events (payloads nil) and how long the publish call took.
	OnPublished func(events []aggregate.Envelope, took time.Duration)
	// OnPublishError is called when a publish call fails, with the
	// number of events it carried. The relay then isolates the failing
	// events (see the package documentation).
	OnPublishError func(err error, events int)
	// OnAttemptFailed is called for every event whose failed attempt was
	// recorded.
	OnAttemptFailed func(AttemptFailure)
	// OnLeader is called with true when this relay becomes the active one
	// and with false when it stops being it.
	OnLeader func(leader bool)
	// OnError is called with errors the relay recovers from by retrying:
	// database errors, outages of the publisher, lost leadership.
	OnError func(err error)
}
