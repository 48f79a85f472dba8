package eventbus

import (
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/dddkit/dddkit/internal/wire"
)

// Header names: the watermill metadata keys (Kafka record headers) of an
// event message. This is the one definition of dddkit's wire contract:
// [Registry.Encode], the outbox relay and every consumer use these, and a
// producer of another stack that wants to talk to dddkit consumers writes
// them. The message UUID is the event ID too, the payload is the JSON of
// the event, and the Kafka key is the aggregate ID.
const (
	HeaderEventID          = wire.HeaderEventID          // "event_id"
	HeaderEventName        = wire.HeaderEventName        // "event_name"
	HeaderEventVersion     = wire.HeaderEventVersion     // "event_version": schema version of the payload; absent means 1
	HeaderAggregateType    = wire.HeaderAggregateType    // "aggregate_type"
	HeaderAggregateID      = wire.HeaderAggregateID      // "aggregate_id", also the Kafka message key
	HeaderAggregateVersion = wire.HeaderAggregateVersion // "aggregate_version", decimal
	HeaderOccurredAt       = wire.HeaderOccurredAt       // "occurred_at", RFC 3339 with nanoseconds, UTC
	HeaderCorrelationID    = wire.HeaderCorrelationID    // "correlation_id", as watermill's correlation middleware
	HeaderCausationID      = wire.HeaderCausationID      // "causation_id"
	HeaderTraceParent      = wire.HeaderTraceParent      // "traceparent" (W3C), when one was recorded
	HeaderContentType      = wire.HeaderContentType      // "content_type": "application/json" when present
	// HeaderValuePrefix prefixes each free-form metadata value
	// ([aggregate.Metadata] Values): Values["tenant"] travels as
	// "x-meta-tenant".
	HeaderValuePrefix = wire.HeaderValuePrefix
)

// Headers a [Router] (and a [BatchProcessor]) adds to a message it sends
// to the dead-letter topic (watermill's poison-queue keys).
const (
	// HeaderDeadLetterReason holds the error of the last attempt.
	HeaderDeadLetterReason = middleware.ReasonForPoisonedKey
	// HeaderDeadLetterTopic holds the topic the message was consumed from.
	HeaderDeadLetterTopic = middleware.PoisonedTopicKey
	// HeaderDeadLetterHandler holds the name of the handler that gave up.
	HeaderDeadLetterHandler = middleware.PoisonedHandlerKey
)
