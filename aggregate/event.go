package aggregate

import (
	"context"
	"maps"
	"time"
)

// Event is the payload of a domain event: a plain Go value that says what
// happened ("UserRegistered", "PasswordChanged"). Its only obligation is a
// stable name, which is what is stored in the outbox and sent to Kafka. The
// name must not change when the Go type is renamed or moved, so write it out:
//
//	func (UserRegistered) EventName() string { return "auth.user_registered" }
//
// Events need no struct tags and no knowledge of storage or transport; the
// eventbus codec turns them into JSON.
type Event interface {
	EventName() string
}

// Versioned is implemented by events whose payload schema has evolved past
// version 1: a field was renamed, split or changed its meaning. The
// version is stored with the event and sent with it, and the event
// registry brings older payloads up to date with upcasters before they are
// decoded (see package eventbus). An event without this method is at
// version 1; so is one whose EventVersion returns less than 1.
//
//	func (UserRegistered) EventVersion() int { return 2 }
type Versioned interface {
	Event
	EventVersion() int
}

// Envelope is a recorded event: the payload together with everything that is
// stamped on it when an aggregate records it. Envelopes are what a repository
// saves to the outbox and what the outbox relay publishes.
type Envelope struct {
	// ID identifies this event occurrence (a UUIDv7, so IDs sort by time).
	// Consumers use it to drop duplicates.
	ID string
	// Name is Payload.EventName(), copied so that stored events can be
	// routed without decoding the payload.
	Name string
	// AggregateType and AggregateID name the aggregate that recorded it.
	AggregateType string
	AggregateID   string
	// Version is the aggregate version this event produced: the first
	// event of a new aggregate has version 1.
	Version int64
	// OccurredAt is when the event was recorded, from the root's clock.
	OccurredAt time.Time
	// Metadata travels with the event through the outbox and Kafka.
	Metadata Metadata
	// Payload is the domain event itself.
	Payload Event
}

// Metadata is the context of an event that is not part of the domain fact:
// who caused it and in which conversation. It travels unchanged through the
// outbox and Kafka headers to the consumers.
type Metadata struct {
	// CorrelationID ties together everything that happened because of one
	// outside request (typically the HTTP request ID). Carried over to
	// every event and command that follows from it.
	CorrelationID string
	// CausationID is the ID of the message (command or event) that directly
	// caused this one.
	CausationID string
	// TraceParent is a W3C traceparent header value, when tracing is on.
	TraceParent string
	// TraceState is the W3C tracestate header value that goes with
	// TraceParent, when the tracer keeps one.
	TraceState string
	// Values holds free-form string key/values (tenant, user agent, ...).
	Values map[string]string
}

// IsZero reports whether m carries no metadata at all.
func (m Metadata) IsZero() bool {
	return m.CorrelationID == "" && m.CausationID == "" && m.TraceParent == "" && m.TraceState == "" && len(m.Values) == 0
}

// Clone returns a copy of m that shares no map with it.
func (m Metadata) Clone() Metadata {
	m.Values = maps.Clone(m.Values)
	return m
}

// Merge returns m with every empty field filled from other; keys of
// other.Values are added where m has none. The trace context
// (TraceParent and TraceState) is taken from other as a pair, when m has
// neither.
func (m Metadata) Merge(other Metadata) Metadata {
	if m.CorrelationID == "" {
		m.CorrelationID = other.CorrelationID
	}
	if m.CausationID == "" {
		m.CausationID = other.CausationID
	}
	if m.TraceParent == "" && m.TraceState == "" {
		m.TraceParent, m.TraceState = other.TraceParent, other.TraceState
	}
	if len(other.Values) > 0 {
		merged := make(map[string]string, len(m.Values)+len(other.Values))
		maps.Copy(merged, other.Values)
		maps.Copy(merged, m.Values)
		m.Values = merged
	}
	return m
}

// CausedBy returns the metadata of what handling env causes — the
// commands a handler dispatches, the events they record, the deadlines it
// schedules: env's correlation ID carried over (env's own ID when it has
// none), env's ID as the causation ID, trace context and values kept.
// Consumers put it in the handler's context with [ContextWithMetadata], so
// the chain event → command → event can be followed.
func CausedBy(env Envelope) Metadata {
	md := env.Metadata.Clone()
	if md.CorrelationID == "" {
		md.CorrelationID = env.ID
	}
	md.CausationID = env.ID
	return md
}

type metadataKey struct{}

// ContextWithMetadata returns a context that carries md. Repositories and
// the command bus read it with [MetadataFromContext] and stamp it on the
// events an aggregate records while handling the request; an HTTP middleware
// typically puts the request's correlation ID there.
func ContextWithMetadata(ctx context.Context, md Metadata) context.Context {
	return context.WithValue(ctx, metadataKey{}, md)
}

// MetadataFromContext returns the metadata stored by [ContextWithMetadata],
// or the zero Metadata.
func MetadataFromContext(ctx context.Context) Metadata {
	md, _ := ctx.Value(metadataKey{}).(Metadata)
	return md
}
