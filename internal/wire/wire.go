// Package wire is the one implementation of how a domain event looks on
// the wire: CloudEvents 1.0 in the binary content mode of the Kafka
// protocol binding. The outbox relay (producer side) and the eventbus
// codec (both sides) use it, so the two cannot drift apart; package
// eventbus exports the header names as the public contract
// (eventbus.HeaderEventID, ...), package kafka maps such a message onto a
// Kafka record (key = the aggregate ID, timestamp = the occurred-at time,
// value = the payload bytes), or, for the outbox relay, builds the same
// record from the event directly ([EventPublisher]; both take the header
// values from [EventHeaders]). docs/wire-contract.md describes the
// contract for readers in other languages.
//
// A message built by [ToMessage] has
//
//   - UUID = the event ID (package kafka sends it as [HeaderEventID]);
//   - Payload = the JSON encoding of the event payload, as the codec
//     produced it;
//   - Metadata (Kafka headers) = the CloudEvents attributes
//     ([HeaderSpecVersion], [HeaderEventID], [HeaderEventName],
//     [HeaderSource], [HeaderOccurredAt], [HeaderAggregateID],
//     [HeaderContentType]), dddkit's extension attributes
//     ([HeaderAggregateType], [HeaderAggregateVersion],
//     [HeaderEventVersion], [HeaderCorrelationID], [HeaderCausationID]),
//     the distributed-tracing extension ([HeaderTraceParent],
//     [HeaderTraceState]), and one [HeaderValuePrefix]+key header per
//     free-form metadata value (plain Kafka headers, not CloudEvents
//     attributes: their keys are arbitrary and need not be valid
//     attribute names).
//
// Readers ([FromMessage], [ParseEventVersion], [ContentType],
// [MessageUUID]) also understand the headers dddkit wrote before
// CloudEvents (event_id, event_name, ..., "_watermill_message_uuid"): a
// CloudEvents header wins when both are present. That fallback is read
// until v0.3.0 and removed then.
package wire

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
)

// Header names (watermill metadata keys, Kafka record headers): the
// CloudEvents Kafka binding puts attribute X in header "ce_X", except the
// data content type, which is the record's "content-type" header.
const (
	// HeaderSpecVersion is the CloudEvents spec version, [SpecVersion].
	HeaderSpecVersion = "ce_specversion"
	// HeaderEventID is the CloudEvents id: the event ID.
	HeaderEventID = "ce_id"
	// HeaderEventName is the CloudEvents type: the event's stable name.
	HeaderEventName = "ce_type"
	// HeaderSource is the CloudEvents source: a URI-reference naming the
	// producing service.
	HeaderSource = "ce_source"
	// HeaderOccurredAt is the CloudEvents time: when the event was
	// recorded, RFC 3339 with nanoseconds, UTC.
	HeaderOccurredAt = "ce_time"
	// HeaderAggregateID is the CloudEvents subject: the ID of the
	// aggregate that recorded the event (also the Kafka record key).
	HeaderAggregateID = "ce_subject"
	// HeaderContentType is the CloudEvents datacontenttype; always
	// [ContentTypeJSON] for events written by dddkit.
	HeaderContentType = "content-type"
	// HeaderAggregateType is the extension attribute aggregatetype.
	HeaderAggregateType = "ce_aggregatetype"
	// HeaderAggregateVersion is the extension attribute
	// aggregateversion: the aggregate's version after the event, decimal.
	HeaderAggregateVersion = "ce_aggregateversion"
	// HeaderEventVersion is the extension attribute eventversion: the
	// schema version of the payload, decimal, always written.
	HeaderEventVersion = "ce_eventversion"
	// HeaderCorrelationID is the extension attribute correlationid.
	HeaderCorrelationID = "ce_correlationid"
	// HeaderCausationID is the extension attribute causationid.
	HeaderCausationID = "ce_causationid"
	// HeaderTraceParent is the traceparent attribute of the CloudEvents
	// distributed-tracing extension (W3C trace context).
	HeaderTraceParent = "ce_traceparent"
	// HeaderTraceState is the tracestate attribute of the distributed-
	// tracing extension.
	HeaderTraceState = "ce_tracestate"
	// HeaderValuePrefix prefixes the key of each [aggregate.Metadata]
	// Values entry: Values["tenant"] travels as header "x-meta-tenant".
	HeaderValuePrefix = "x-meta-"
)

// Headers are the header names of the contract other than the
// HeaderValuePrefix ones, in the order package kafka writes them: the
// CloudEvents context attributes, then the extensions.
var Headers = [...]string{
	HeaderSpecVersion, HeaderEventID, HeaderSource, HeaderEventName, HeaderAggregateID, HeaderOccurredAt,
	HeaderContentType, HeaderAggregateType, HeaderAggregateVersion, HeaderEventVersion,
	HeaderCorrelationID, HeaderCausationID, HeaderTraceParent, HeaderTraceState,
}

// SpecVersion is the value of [HeaderSpecVersion].
const SpecVersion = "1.0"

// ContentTypeJSON is the value of [HeaderContentType].
const ContentTypeJSON = "application/json"

// The headers dddkit wrote before CloudEvents. Readers fall back to them
// until v0.3.0; nothing writes them.
const (
	legacyEventID          = "event_id"
	legacyEventName        = "event_name"
	legacyAggregateType    = "aggregate_type"
	legacyAggregateID      = "aggregate_id"
	legacyAggregateVersion = "aggregate_version"
	legacyOccurredAt       = "occurred_at"
	legacyCorrelationID    = "correlation_id"
	legacyCausationID      = "causation_id"
	legacyTraceParent      = "traceparent"
	legacyContentType      = "content_type"
	legacyEventVersion     = "event_version"
	// legacyMessageUUID is watermill-kafka's header of the message UUID.
	legacyMessageUUID = "_watermill_message_uuid"
)

// get returns the value of header name in h, or of its legacy name when
// name is absent or empty, and the header it was read from.
func get(h map[string]string, name, legacy string) (value, from string) {
	if v := h[name]; v != "" {
		return v, name
	}
	if v := h[legacy]; v != "" {
		return v, legacy
	}
	return "", name
}

// MetadataHeaders returns md as header name → value, only for the fields
// that are set. It is the part of the headers that [ToMessage] takes from
// the event's metadata; the outbox stores exactly this map.
func MetadataHeaders(md aggregate.Metadata) map[string]string {
	if md.IsZero() {
		return nil
	}
	h := make(map[string]string, 4+len(md.Values))
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
	if md.TraceState != "" {
		h[HeaderTraceState] = md.TraceState
	}
	for k, v := range md.Values {
		h[HeaderValuePrefix+k] = v
	}
}

// ParseMetadata is the inverse of [MetadataHeaders]: it picks the
// correlation and causation IDs, the trace context and every
// HeaderValuePrefix entry out of h and ignores everything else. It reads
// the legacy names too (outbox rows written before CloudEvents store
// them).
func ParseMetadata(h map[string]string) aggregate.Metadata {
	var (
		md     aggregate.Metadata
		legacy aggregate.Metadata // read from the legacy names
	)
	// One pass over the headers (a consumer reads every message's).
	for k, v := range h {
		switch k {
		case HeaderCorrelationID:
			md.CorrelationID = v
		case HeaderCausationID:
			md.CausationID = v
		case HeaderTraceParent:
			md.TraceParent = v
		case HeaderTraceState:
			md.TraceState = v
		case legacyCorrelationID:
			legacy.CorrelationID = v
		case legacyCausationID:
			legacy.CausationID = v
		case legacyTraceParent:
			legacy.TraceParent = v
		default:
			if strings.HasPrefix(k, HeaderValuePrefix) {
				if md.Values == nil {
					md.Values = make(map[string]string)
				}
				md.Values[k[len(HeaderValuePrefix):]] = v
			}
		}
	}
	md.CorrelationID = cmp.Or(md.CorrelationID, legacy.CorrelationID)
	md.CausationID = cmp.Or(md.CausationID, legacy.CausationID)
	md.TraceParent = cmp.Or(md.TraceParent, legacy.TraceParent)
	return md
}

// ToMessage builds the CloudEvents message for env with the already
// encoded payload (JSON of env.Payload; env.Payload itself is not read)
// of schema version schemaVersion. source is the producing service's
// CloudEvents source. The message UUID is the event ID. Its metadata
// holds the headers [EventHeaders] gives a value and one
// HeaderValuePrefix header per env.Metadata.Values entry.
func ToMessage(env aggregate.Envelope, source string, payload []byte, schemaVersion int) *message.Message {
	msg := message.NewMessage(env.ID, payload)
	vals := EventHeaders(env, source, schemaVersion)
	// Sized exactly: a map sized for more than it holds costs a larger
	// allocation per event.
	n := len(env.Metadata.Values)
	for _, v := range vals {
		if v != "" {
			n++
		}
	}
	md := make(message.Metadata, n)
	for i, v := range vals {
		if v != "" {
			md[Headers[i]] = v
		}
	}
	for k, v := range env.Metadata.Values {
		md[HeaderValuePrefix+k] = v
	}
	msg.Metadata = md
	return msg
}

// EventHeaders returns the value of each of [Headers] (by index) in the
// message of env that [ToMessage] builds, "" for a header the message
// has not. It is the one definition of those values: ToMessage fills a
// message's metadata with them, package kafka a record's headers.
func EventHeaders(env aggregate.Envelope, source string, schemaVersion int) [len(Headers)]string {
	var occurredAt string
	if !env.OccurredAt.IsZero() {
		occurredAt = env.OccurredAt.UTC().Format(time.RFC3339Nano)
	}
	return [...]string{
		SpecVersion, env.ID, source, env.Name, env.AggregateID, occurredAt,
		ContentTypeJSON, env.AggregateType, strconv.FormatInt(env.Version, 10), strconv.Itoa(schemaVersion),
		env.Metadata.CorrelationID, env.Metadata.CausationID, env.Metadata.TraceParent, env.Metadata.TraceState,
	}
}

// Event is an event ready to publish: what [ToMessage] takes besides the
// source. Envelope is the caller's, not copied: the outbox relay hands
// over thousands per call.
type Event struct {
	Envelope      *aggregate.Envelope
	Payload       []byte // env.Payload encoded
	SchemaVersion int
}

// EventPublisher is implemented by a publisher that builds its records
// from events directly, without a watermill message in between: the
// kafka package's. The outbox relay publishes through it when its
// publisher has it. PublishEvents sends the records that the messages of
// ToMessage(*ev.Envelope, source, ev.Payload, ev.SchemaVersion) would make,
// as one publisher call, and returns when they were all acknowledged, or
// with an error when any failed, or when ctx ended.
type EventPublisher interface {
	PublishEvents(ctx context.Context, topic, source string, events []Event) error
}

// ErrMissingHeader is wrapped by [FromMessage] when a required header is
// absent.
var ErrMissingHeader = errors.New("wire: missing header")

// FromMessage reads the envelope fields back from a message built by
// [ToMessage] (or in the legacy format): everything except Payload, which
// stays nil (decoding the payload into a Go type is the eventbus codec's
// job; the JSON is msg.Payload). The event ID is taken from
// [HeaderEventID], or msg.UUID when no ID header is present. Event name,
// aggregate type and ID are required; a spec version other than
// [SpecVersion], and a present but malformed aggregate version or time,
// are errors.
func FromMessage(msg *message.Message) (aggregate.Envelope, error) {
	md := msg.Metadata
	env := aggregate.Envelope{Metadata: ParseMetadata(md)}
	var names [4]string
	env.ID, names[0] = get(md, HeaderEventID, legacyEventID)
	env.Name, names[1] = get(md, HeaderEventName, legacyEventName)
	env.AggregateType, names[2] = get(md, HeaderAggregateType, legacyAggregateType)
	env.AggregateID, names[3] = get(md, HeaderAggregateID, legacyAggregateID)
	if env.ID == "" {
		env.ID = msg.UUID
	}
	var errs []error
	for i, v := range [...]string{env.ID, env.Name, env.AggregateType, env.AggregateID} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%w %q", ErrMissingHeader, names[i]))
		}
	}
	if v := md[HeaderSpecVersion]; v != "" && v != SpecVersion {
		errs = append(errs, fmt.Errorf("wire: header %q: CloudEvents spec version %q, want %q", HeaderSpecVersion, v, SpecVersion))
	}
	if v, from := get(md, HeaderAggregateVersion, legacyAggregateVersion); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("wire: header %q: %w", from, err))
		}
		env.Version = n
	}
	if v, from := get(md, HeaderOccurredAt, legacyOccurredAt); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			errs = append(errs, fmt.Errorf("wire: header %q: %w", from, err))
		}
		env.OccurredAt = t.UTC()
	}
	return env, errors.Join(errs...)
}

// AggregateID returns the aggregate ID of the message with metadata md
// as [FromMessage] reads it ([HeaderAggregateID], or the legacy
// "aggregate_id"), without reading the rest; "" when neither is present.
func AggregateID(md message.Metadata) string {
	v, _ := get(md, HeaderAggregateID, legacyAggregateID)
	return v
}

// EventID returns the event ID of the message with metadata md as
// [FromMessage] reads it ([HeaderEventID], or the legacy "event_id"),
// without reading the rest; "" when neither is present.
func EventID(md message.Metadata) string {
	v, _ := get(md, HeaderEventID, legacyEventID)
	return v
}

// ContentType returns the content type of the payload: [HeaderContentType],
// or the legacy "content_type"; "" when neither is present.
func ContentType(md message.Metadata) string {
	v, _ := get(md, HeaderContentType, legacyContentType)
	return v
}

// MessageUUID returns the UUID a consumer gives the message whose record
// headers are h: [HeaderEventID], else the legacy "event_id", else
// watermill-kafka's legacy "_watermill_message_uuid" header. The last is
// a transport detail, not metadata: MessageUUID deletes it from h.
func MessageUUID(h map[string]string) string {
	legacy := h[legacyMessageUUID]
	delete(h, legacyMessageUUID)
	if id, _ := get(h, HeaderEventID, legacyEventID); id != "" {
		return id
	}
	return legacy
}
