// Package wire is the one implementation of how a domain event looks on
// the wire: the header names and how an [aggregate.Envelope] becomes a
// watermill message (and back). The outbox relay (producer side) and the
// eventbus codec (both sides) use it, so the two cannot drift apart;
// package eventbus exports the header names as the public contract
// (eventbus.HeaderEventID, ...), package kafka maps such a message onto a
// Kafka record (key = the aggregate ID).
//
// A message built by [ToMessage] has
//
//   - UUID = the event ID (watermill-kafka sends it as the
//     "_watermill_message_uuid" Kafka header);
//   - Payload = the JSON encoding of the event payload;
//   - Metadata (Kafka headers) = the Header* constants below, plus one
//     HeaderValuePrefix+key header per free-form metadata value.
//
// The Kafka message key is the aggregate ID ([HeaderAggregateID]; package
// kafka sets it), so all events of one aggregate land on one partition and
// keep their order.
package wire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
)

// Header names (watermill metadata keys, Kafka record headers).
const (
	HeaderEventID          = "event_id"
	HeaderEventName        = "event_name"
	HeaderAggregateType    = "aggregate_type"
	HeaderAggregateID      = "aggregate_id"
	HeaderAggregateVersion = "aggregate_version"
	// HeaderOccurredAt holds the time the event was recorded, RFC 3339
	// with nanoseconds, UTC.
	HeaderOccurredAt = "occurred_at"
	// HeaderCorrelationID equals watermill's
	// middleware.CorrelationIDMetadataKey, so watermill's correlation
	// middleware and dddkit agree on it.
	HeaderCorrelationID = "correlation_id"
	HeaderCausationID   = "causation_id"
	// HeaderTraceParent is the W3C trace-context header.
	HeaderTraceParent = "traceparent"
	// HeaderContentType describes the payload encoding; always
	// [ContentTypeJSON] for events written by dddkit.
	HeaderContentType = "content_type"
	// HeaderValuePrefix prefixes the key of each [aggregate.Metadata]
	// Values entry: Values["tenant"] travels as header "x-meta-tenant".
	HeaderValuePrefix = "x-meta-"
)

// ContentTypeJSON is the value of [HeaderContentType].
const ContentTypeJSON = "application/json"

// MetadataHeaders returns md as header name → value, only for the fields
// that are set. It is the part of the headers that [ToMessage] takes from
// the event's metadata; the outbox stores exactly this map.
func MetadataHeaders(md aggregate.Metadata) map[string]string {
	if md.IsZero() {
		return nil
	}
	h := make(map[string]string, 3+len(md.Values))
	putMetadata(h, md)
	return h
}

func putMetadata(h map[string]string, md aggregate.Metadata) {
	if md.CorrelationID != "" {
		h[HeaderCorrelationID] = md.CorrelationID
	}
	if md.CausationID != "" {
		h[HeaderCausationID] = md.CausationID
	}
	if md.TraceParent != "" {
		h[HeaderTraceParent] = md.TraceParent
	}
	for k, v := range md.Values {
		h[HeaderValuePrefix+k] = v
	}
}

// ParseMetadata is the inverse of [MetadataHeaders]: it picks the
// correlation and causation IDs, the traceparent and every HeaderValuePrefix entry
// out of h and ignores everything else.
func ParseMetadata(h map[string]string) aggregate.Metadata {
	var md aggregate.Metadata
	for k, v := range h {
		switch {
		case k == HeaderCorrelationID:
			md.CorrelationID = v
		case k == HeaderCausationID:
			md.CausationID = v
		case k == HeaderTraceParent:
			md.TraceParent = v
		case strings.HasPrefix(k, HeaderValuePrefix):
			if md.Values == nil {
				md.Values = make(map[string]string)
			}
			md.Values[k[len(HeaderValuePrefix):]] = v
		}
	}
	return md
}

// ToMessage builds the watermill message for env with the already encoded
// payload (JSON of env.Payload; env.Payload itself is not read). The
// message UUID is the event ID.
func ToMessage(env aggregate.Envelope, payload []byte) *message.Message {
	msg := message.NewMessage(env.ID, payload)
	md := make(message.Metadata, 10+len(env.Metadata.Values))
	md[HeaderEventID] = env.ID
	md[HeaderEventName] = env.Name
	md[HeaderAggregateType] = env.AggregateType
	md[HeaderAggregateID] = env.AggregateID
	md[HeaderAggregateVersion] = strconv.FormatInt(env.Version, 10)
	if !env.OccurredAt.IsZero() {
		md[HeaderOccurredAt] = env.OccurredAt.UTC().Format(time.RFC3339Nano)
	}
	md[HeaderContentType] = ContentTypeJSON
	putMetadata(md, env.Metadata)
	msg.Metadata = md
	return msg
}

// ErrMissingHeader is wrapped by [FromMessage] when a required header is
// absent.
var ErrMissingHeader = errors.New("wire: missing header")

// FromMessage reads the envelope fields back from a message built by
// [ToMessage]: everything except Payload, which stays nil (decoding the
// payload into a Go type is the eventbus codec's job; the JSON is
// msg.Payload). The event ID is taken from HeaderEventID, or msg.UUID when
// that header is absent. Event name, aggregate type and ID are required;
// a present but malformed version or occurred-at is an error.
func FromMessage(msg *message.Message) (aggregate.Envelope, error) {
	md := msg.Metadata
	env := aggregate.Envelope{
		ID:            md.Get(HeaderEventID),
		Name:          md.Get(HeaderEventName),
		AggregateType: md.Get(HeaderAggregateType),
		AggregateID:   md.Get(HeaderAggregateID),
		Metadata:      ParseMetadata(md),
	}
	if env.ID == "" {
		env.ID = msg.UUID
	}
	var errs []error
	for _, req := range [...]struct{ name, value string }{
		{HeaderEventID, env.ID}, {HeaderEventName, env.Name},
		{HeaderAggregateType, env.AggregateType}, {HeaderAggregateID, env.AggregateID},
	} {
		if req.value == "" {
			errs = append(errs, fmt.Errorf("%w %q", ErrMissingHeader, req.name))
		}
	}
	if v := md.Get(HeaderAggregateVersion); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("wire: header %q: %w", HeaderAggregateVersion, err))
		}
		env.Version = n
	}
	if v := md.Get(HeaderOccurredAt); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("wire: header %q: %w", HeaderOccurredAt, err))
		}
		env.OccurredAt = t
	}
	return env, errors.Join(errs...)
}
