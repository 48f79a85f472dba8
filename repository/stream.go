package repository

import (
	"context"
	"fmt"
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
	// can report its lag. No event at or below it can become readable
	// later: a reader whose filtered Read found nothing up to Head may
	// continue from Head ([Follow] does).
	Head(ctx context.Context) (int64, error)

	// Wait returns when events with a position greater than after may
	// have become readable, or with ctx's error when ctx ends first. It
	// is woken by writes (PostgreSQL: LISTEN/NOTIFY), not by polling; a
	// return without new events is allowed, so callers Read again and
	// Wait again when Read returned nothing.
	Wait(ctx context.Context, after int64) error
}

// Follow reads stream from the position after: it catches up (Read in
// batches of up to batchSize events matching filter, handing each batch
// to fn, until Read finds nothing), then follows live writes (Wait, then
// Read again), until ctx ends or fn or the stream fails. fn sees every
// matching event exactly once, in position order; the position of the
// last event of the batch it is given is where a reader that stops
// continues from. Follow returns fn's error unchanged, the stream's
// error wrapped, or ctx's error when ctx ends.
//
// While it is caught up, Follow skips past the events the filter does
// not select (it continues from [Stream.Head]), so a filtered reader does
// not spin on a busy stream.
func Follow(ctx context.Context, stream Stream, after int64, filter StreamFilter, batchSize int, fn func(ctx context.Context, events []StoredEvent) error) error {
	if stream == nil || fn == nil || batchSize < 1 {
		return fmt.Errorf("repository: Follow: need a stream, a function and a positive batch size (got batch size %d)", batchSize)
	}
	for {
		head, err := stream.Head(ctx)
		if err != nil {
			return followError(ctx, err)
		}
		events, err := stream.Read(ctx, after, filter, batchSize)
		if err != nil {
			return followError(ctx, err)
		}
		if len(events) > 0 {
			if err := fn(ctx, events); err != nil {
				return err
			}
			after = events[len(events)-1].Position
		}
		if len(events) == batchSize {
			continue
		}
		// Caught up: every event up to head that Read will ever return
		// has been returned.
		after = max(after, head)
		if err := stream.Wait(ctx, after); err != nil {
			return followError(ctx, err)
		}
	}
}

func followError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("repository: follow event stream: %w", err)
}
