package eventbus

import (
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/dddkit/dddkit/internal/wire"
)

// Header names: the watermill metadata keys (Kafka record headers) of an
// event message. The outbox relay writes the same ones, so producers of
// other stacks that want to talk to dddkit consumers write these.
const (
	HeaderEventID          = wire.HeaderEventID
	HeaderEventName        = wire.HeaderEventName
	HeaderEventVersion     = wire.HeaderEventVersion // schema version; absent means 1
	HeaderAggregateType    = wire.HeaderAggregateType
	HeaderAggregateID      = wire.HeaderAggregateID // also the Kafka message key
	HeaderAggregateVersion = wire.HeaderAggregateVersion
	HeaderOccurredAt       = wire.HeaderOccurredAt // RFC 3339 with nanoseconds
	HeaderCorrelationID    = wire.HeaderCorrelationID
	HeaderCausationID      = wire.HeaderCausationID
	HeaderTraceParent      = wire.HeaderTraceParent
	HeaderContentType      = wire.HeaderContentType // "application/json" when present
	// HeaderValuePrefix prefixes each [aggregate.Metadata] Values key:
	// Values["tenant"] travels as "x-meta-tenant".
	HeaderValuePrefix = wire.MetaPrefix
)

// Headers a [Router] adds to a message it sends to the dead-letter topic
// (watermill's poison-queue keys).
const (
	// HeaderDeadLetterReason holds the error of the last attempt.
	HeaderDeadLetterReason = middleware.ReasonForPoisonedKey
	// HeaderDeadLetterTopic holds the topic the message was consumed from.
	HeaderDeadLetterTopic = middleware.PoisonedTopicKey
	// HeaderDeadLetterHandler holds the name of the handler that gave up.
	HeaderDeadLetterHandler = middleware.PoisonedHandlerKey
)
