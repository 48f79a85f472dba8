package deadline

import (
	"context"
	"time"

	"github.com/dddkit/dddkit/aggregate"
)

// Scheduler schedules deadlines: events published at a time, under a key
// that cancels or replaces them. The outbox adapters implement it:
// *outbox.Memory (the embedded mode) and *postgres.Outbox (durable: the
// deadline is an outbox row written in the unit of work of ctx).
type Scheduler interface {
	// Schedule arranges for event to be published at at (or as soon
	// after as a relay runs) under key, replacing the deadline scheduled
	// under key, if any. The event's type must be registered with an
	// aggregate type: it is published on that type's topic, with key as
	// its aggregate ID, a new event ID, at as its occurred-at time and
	// the metadata of ctx (correlation, causation, trace).
	Schedule(ctx context.Context, key string, at time.Time, event aggregate.Event) error
	// Cancel removes the deadline scheduled under key and reports
	// whether there was one. Once a relay has taken a due deadline up,
	// it is no longer scheduled: Cancel reports false and it fires.
	Cancel(ctx context.Context, key string) (bool, error)
}
