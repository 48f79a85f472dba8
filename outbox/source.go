package outbox

import (
	"context"
	"time"

	"github.com/dddkit/dddkit/aggregate"
)

// Source is the storage side of the [Relay]: an outbox that events are
// written into and read back from in the order they were written.
// [Memory] is one; the postgres package has the PostgreSQL one.
//
// The relay calls Fetch, MarkPublished and MarkAttempts only from inside
// the function it passes to Lead, one call at a time.
type Source interface {
	// Lead blocks until this process holds the right to relay the source
	// (at most one relay at a time per source, also across processes; a
	// sharded source, such as the postgres package's, grants it per shard,
	// so several relays lead parts of it at once, each row's part to one
	// of them), then calls fn. fn's context ends when the right is lost; wake
	// receives when events may have been written since. Lead returns
	// fn's error, an error when the right could not be taken or was lost,
	// or nil when ctx ends.
	Lead(ctx context.Context, fn func(ctx context.Context, wake <-chan struct{}) error) error
	// Fetch returns up to limit pending events in sequence order, leaving
	// out every event of an aggregate that has an earlier event failed
	// or waiting for a retry, and events whose retry is not due. A
	// Source that schedules deadlines first makes the scheduled events
	// that are due pending, at the end of the order (in order of due
	// time); scheduled events are never returned, and hold back nothing,
	// before that.
	//
	// inFlight spans the events the relay is still publishing (fetched,
	// not yet marked; the zero [SeqRange] when none). Fetch returns none
	// of those, and no event of an aggregate that has one of them, or an
	// earlier pending event in the span that Fetch does not return: that
	// one must be published, or fail, first. Leaving out every pending
	// event in the span, and every event of their aggregates, does so; a
	// Source that knows the aggregates of the events in flight may return
	// other aggregates' events in the span.
	Fetch(ctx context.Context, limit int, inFlight SeqRange) ([]Pending, error)
	// NextDue returns when the earliest scheduled event that was not due
	// at the last Fetch becomes due, or the zero time when there was
	// none (always, for a Source that does not schedule). The relay
	// fetches again at that time.
	NextDue() time.Time
	// MarkPublished records the events as published (or deletes them).
	MarkPublished(ctx context.Context, seqs []int64) error
	// MarkAttempts records failed publish attempts.
	MarkAttempts(ctx context.Context, attempts []Attempt) error
	// Stats counts pending, retrying and failed events.
	Stats(ctx context.Context) (Stats, error)
}

// Pending is an event a [Source] hands to the relay.
type Pending struct {
	// Seq is the event's position in the outbox.
	Seq int64
	// Event is the event without its Payload (the relay forwards Payload
	// bytes as they were encoded at write time).
	Event aggregate.Envelope
	// SchemaVersion is the version of the payload's schema.
	SchemaVersion int
	// Payload is the encoded event.
	Payload []byte
	// Attempts counts failed publish attempts so far.
	Attempts int
}

// Attempt is a failed publish attempt the relay asks a [Source] to
// record.
type Attempt struct {
	Seq      int64
	Attempts int           // failed attempts, this one included
	Err      string        // what failed
	Final    bool          // no more attempts: the event is failed
	Delay    time.Duration // until the next attempt, when not Final
}

// SeqRange is the closed range of sequence numbers From..To. Sequence
// numbers start at 1, so the zero SeqRange contains none.
type SeqRange struct {
	From, To int64
}

// Contains reports whether seq is in r.
func (r SeqRange) Contains(seq int64) bool { return r.From <= seq && seq <= r.To && seq > 0 }

// Empty reports whether r contains no sequence number.
func (r SeqRange) Empty() bool { return r.To < max(r.From, 1) }

// Len returns how many sequence numbers r contains.
func (r SeqRange) Len() int64 {
	if r.Empty() {
		return 0
	}
	return r.To - max(r.From, 1) + 1
}
