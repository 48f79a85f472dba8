package outbox

import "github.com/dddkit/dddkit/internal/wire"

// The headers (watermill metadata, Kafka record headers) every relayed
// event carries. The message UUID is the event ID as well; the payload is
// the JSON encoding of the event; the Kafka key is the aggregate ID.
const (
	HeaderEventID          = wire.HeaderEventID          // "event_id"
	HeaderEventName        = wire.HeaderEventName        // "event_name"
	HeaderAggregateType    = wire.HeaderAggregateType    // "aggregate_type"
	HeaderAggregateID      = wire.HeaderAggregateID      // "aggregate_id"
	HeaderAggregateVersion = wire.HeaderAggregateVersion // "aggregate_version", decimal
	HeaderOccurredAt       = wire.HeaderOccurredAt       // "occurred_at", RFC 3339 with nanoseconds, UTC
	HeaderCorrelationID    = wire.HeaderCorrelationID    // "correlation_id", as watermill's correlation middleware
	HeaderCausationID      = wire.HeaderCausationID      // "causation_id"
	HeaderTraceParent      = wire.HeaderTraceParent      // "traceparent" (W3C), when one was recorded
	HeaderContentType      = wire.HeaderContentType      // "content_type": "application/json"
	HeaderEventVersion     = wire.HeaderEventVersion     // "event_version": schema version of the payload, decimal
	// HeaderMetaPrefix prefixes each free-form metadata value:
	// Metadata.Values["tenant"] travels as "x-meta-tenant".
	HeaderMetaPrefix = wire.MetaPrefix
)

// DefaultTopic is the topic an event of aggregateType goes to unless
// RelayConfig.Topic says otherwise: the aggregate type followed by
// ".events" ("user" → "user.events"); characters Kafka does not allow in
// topic names become '_'.
func DefaultTopic(aggregateType string) string { return wire.DefaultTopic(aggregateType) }
