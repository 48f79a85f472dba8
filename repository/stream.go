package repository

import (
	"context"
	"time"

	"github.com/dddkit/dddkit/aggregate"
)

// StoredEvent is one event as an event store's [Stream] returns it.
type StoredEvent struct {
	// Position is the event's place in the store's global order: positive
	// and strictly increasing along the stream. Positions may have gaps
	// (a rolled-back write uses one up); a reader must not read meaning
	// into them beyond their order.
	Position int64

	// Event is the event with its payload decoded by the service's event
	// registry and upcast to the version its Go type has today.
	Event aggregate.Envelope

	// RecordedAt is when the store wrote the event. Readers use it to
	// report how far behind they are in time.
	RecordedAt time.Time
}

// StreamFilter selects the events a [Stream] reader wants. Empty fields
// match everything; a set field matches any of its values.
type StreamFilter struct {
	// EventNames are stable event names (aggregate.Event.EventName).
	EventNames []string
	// AggregateTypes are aggregate types (EventMapping.Type).
	AggregateTypes []string
}

// Stream is the read side of an event store: every event of every
// aggregate type, in one global order. Projections and catch-up
// subscriptions read it; postgres.EventStream and the in-memory event
// store implement it.
type Stream interface {
	// Read returns up to limit events matching filter whose position is
	// greater than after, in position order. It never returns an event
	// while an event with a smaller position may still commit: a reader
	// that continues from the last position it saw never skips an event
	// committed late by a concurrent transaction.
	Read(ctx context.Context, after int64, filter StreamFilter, limit int) ([]StoredEvent, error)

	// Head returns the position of the newest event that Read can return
	// now, whatever the filter (0 when there is none), so that a reader
	// can report its lag.
	Head(ctx context.Context) (int64, error)

	// Wait returns when events with a position greater than after may
	// have become readable, or with ctx's error when ctx ends first. It
	// is woken by writes (PostgreSQL: LISTEN/NOTIFY), not by polling; a
	// return without new events is allowed, so callers Read again and
	// Wait again when Read returned nothing.
	Wait(ctx context.Context, after int64) error
}
