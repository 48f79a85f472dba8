package eventbus

import (
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/dddkit/dddkit/internal/wire"
)

// Header names: the watermill metadata keys (Kafka record headers) of an
// event message. This is the one definition of dddkit's wire contract,
// CloudEvents 1.0 in the binary content mode of the Kafka protocol
// binding (attribute X travels in header "ce_X"): [Registry.Encode], the
// outbox relay and every consumer use these, and a producer of another
// stack that wants to talk to dddkit consumers writes them. The message
// UUID is the event ID too, the payload is the JSON of the event, and
// the Kafka key is the aggregate ID. docs/wire-contract.md has the table.
//
// Consumers also read the headers dddkit wrote before v0.2.0 (event_id,
// event_name, aggregate_type, aggregate_id, aggregate_version,
// occurred_at, correlation_id, causation_id, traceparent, content_type,
// event_version, _watermill_message_uuid) when the CloudEvents header is
// absent; that fallback ends with v0.3.0.
const (
	HeaderSpecVersion      = wire.HeaderSpecVersion      // "ce_specversion": always "1.0"
	HeaderEventID          = wire.HeaderEventID          // "ce_id": the event ID
	HeaderEventName        = wire.HeaderEventName        // "ce_type": the event's stable name
	HeaderSource           = wire.HeaderSource           // "ce_source": the producing service ([RegistryConfig.Source])
	HeaderOccurredAt       = wire.HeaderOccurredAt       // "ce_time": RFC 3339 with nanoseconds, UTC
	HeaderAggregateID      = wire.HeaderAggregateID      // "ce_subject": the aggregate ID, also the Kafka key
	HeaderContentType      = wire.HeaderContentType      // "content-type": "application/json"
	HeaderAggregateType    = wire.HeaderAggregateType    // "ce_aggregatetype"
	HeaderAggregateVersion = wire.HeaderAggregateVersion // "ce_aggregateversion", decimal
	HeaderEventVersion     = wire.HeaderEventVersion     // "ce_eventversion": schema version of the payload, decimal; absent means 1
	HeaderCorrelationID    = wire.HeaderCorrelationID    // "ce_correlationid"
	HeaderCausationID      = wire.HeaderCausationID      // "ce_causationid"
	HeaderTraceParent      = wire.HeaderTraceParent      // "ce_traceparent" (W3C), when one was recorded
	HeaderTraceState       = wire.HeaderTraceState       // "ce_tracestate" (W3C), when one was recorded
	// HeaderValuePrefix prefixes each free-form metadata value
	// ([aggregate.Metadata] Values): Values["tenant"] travels as
	// "x-meta-tenant". These are plain Kafka headers, not CloudEvents
	// attributes: their keys are arbitrary, and attribute names must be
	// lower-case letters and digits.
	HeaderValuePrefix = wire.HeaderValuePrefix
)

// Headers a [Router] adds to a message it sends
// to the dead-letter topic (watermill's poison-queue keys).
const (
	// HeaderDeadLetterReason holds the error of the last attempt.
	HeaderDeadLetterReason = middleware.ReasonForPoisonedKey
	// HeaderDeadLetterTopic holds the topic the message was consumed from.
	HeaderDeadLetterTopic = middleware.PoisonedTopicKey
	// HeaderDeadLetterHandler holds the name of the handler that gave up.
	HeaderDeadLetterHandler = middleware.PoisonedHandlerKey
)
