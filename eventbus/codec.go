package eventbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
)

// Metadata is everything a consumer learns about an event besides its
// payload: the envelope fields the producer stamped on it, read from the
// message headers, and where it was consumed.
type Metadata struct {
	// EventID identifies the event occurrence; the inbox deduplicates by
	// it.
	EventID string
	// EventName is the stable name, e.g. "auth.user_registered".
	EventName string
	// SchemaVersion is the payload's schema version as it arrived, before
	// any upcasting.
	SchemaVersion int
	// AggregateType and AggregateID name the aggregate that recorded the
	// event; AggregateVersion is the version the event gave it.
	AggregateType    string
	AggregateID      string
	AggregateVersion int64
	// OccurredAt is when the aggregate recorded the event (zero when the
	// producer did not say).
	OccurredAt time.Time
	// Metadata holds the correlation and causation IDs, the traceparent
	// and the free key/values as the producer sent them. Inside a handler
	// the context carries a derived copy for whatever the handler causes:
	// same correlation ID, causation ID = EventID (see
	// [aggregate.MetadataFromContext]).
	aggregate.Metadata
	// Topic is the topic the message was consumed from and Handler the
	// name of the handler it was given to; both empty outside a [Router].
	Topic   string
	Handler string
}

// Envelope returns the event as an [aggregate.Envelope] with the given
// payload, for code that works with envelopes.
func (m Metadata) Envelope(payload aggregate.Event) aggregate.Envelope {
	return aggregate.Envelope{
		ID:            m.EventID,
		Name:          m.EventName,
		AggregateType: m.AggregateType,
		AggregateID:   m.AggregateID,
		Version:       m.AggregateVersion,
		OccurredAt:    m.OccurredAt,
		Metadata:      m.Metadata.Clone(),
		Payload:       payload,
	}
}

// causedMetadata is the metadata for everything an event handler causes:
// the correlation ID carried over (the event ID when the event had none),
// causation ID = the event's ID, traceparent and values kept.
func (m Metadata) causedMetadata() aggregate.Metadata {
	md := m.Metadata.Clone()
	if md.CorrelationID == "" {
		md.CorrelationID = m.EventID
	}
	md.CausationID = m.EventID
	return md
}

// Encode turns env into a watermill message: the JSON of env.Payload as
// payload, the envelope fields, the schema version and the metadata as
// headers (see [HeaderEventID] and the other header names), and the event
// ID as message UUID. The schema version is the registered one, or
// [Versioned] of the payload for a type that is not registered.
//
// env needs an ID, a payload and an aggregate type and ID; an empty Name is
// taken from the payload, a different one is an error.
func (r *Registry) Encode(env aggregate.Envelope) (*message.Message, error) {
	if env.Payload == nil {
		return nil, fmt.Errorf("eventbus: encode event %q: no payload", env.ID)
	}
	name := env.Payload.EventName()
	if env.Name == "" {
		env.Name = name
	}
	var errs []error
	if env.Name != name {
		errs = append(errs, fmt.Errorf("envelope name %q differs from payload name %q", env.Name, name))
	}
	if env.ID == "" {
		errs = append(errs, errors.New("no event ID"))
	}
	if env.AggregateType == "" {
		errs = append(errs, errors.New("no aggregate type"))
	}
	if env.AggregateID == "" {
		errs = append(errs, errors.New("no aggregate ID"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("eventbus: encode event %s %q: %w", env.Name, env.ID, err)
	}
	payload, err := json.Marshal(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("eventbus: encode event %s %q: %w", env.Name, env.ID, err)
	}
	version := wire.EventVersion(env.Payload)
	if et, ok := r.lookupName(env.Name); ok {
		version = et.version
	}
	msg := wire.ToMessage(env, payload)
	wire.SetEventVersion(msg.Metadata, version)
	return msg, nil
}

// Decode turns a message into the registered Go value of its event name
// and its [Metadata]. A payload of an older schema version goes through
// the registered upcasters first. An unregistered name gives an error
// wrapping [ErrUnknownEvent] (the Metadata is still filled); everything
// else that goes wrong is a [*DecodeError].
func (r *Registry) Decode(msg *message.Message) (aggregate.Event, Metadata, error) {
	md, err := readMetadata(msg)
	if err != nil {
		return nil, md, err
	}
	et, ok := r.lookupName(md.EventName)
	if !ok {
		return nil, md, fmt.Errorf("%w %q (id %q)", ErrUnknownEvent, md.EventName, md.EventID)
	}
	e, err := et.decodePayload(md, msg.Payload)
	return e, md, err
}

// readMetadata reads the headers of msg.
func readMetadata(msg *message.Message) (Metadata, error) {
	env, err := wire.FromMessage(msg)
	md := Metadata{
		EventID:          env.ID,
		EventName:        env.Name,
		AggregateType:    env.AggregateType,
		AggregateID:      env.AggregateID,
		AggregateVersion: env.Version,
		OccurredAt:       env.OccurredAt,
		Metadata:         env.Metadata,
	}
	version, verr := wire.ParseEventVersion(msg.Metadata)
	md.SchemaVersion = version
	var cerr error
	if ct := msg.Metadata.Get(wire.HeaderContentType); ct != "" && ct != wire.ContentTypeJSON {
		cerr = fmt.Errorf("content type %q, want %q", ct, wire.ContentTypeJSON)
	}
	if err := errors.Join(err, verr, cerr); err != nil {
		return md, &DecodeError{EventID: md.EventID, EventName: md.EventName, Err: err}
	}
	return md, nil
}

// decodePayload upcasts payload from md.SchemaVersion and decodes it.
func (et *eventType) decodePayload(md Metadata, payload []byte) (aggregate.Event, error) {
	payload, err := et.upcast(md.SchemaVersion, payload)
	if err != nil {
		return nil, &DecodeError{EventID: md.EventID, EventName: md.EventName, Err: err}
	}
	e, err := et.decode(payload)
	if err != nil {
		return nil, &DecodeError{EventID: md.EventID, EventName: md.EventName, Err: fmt.Errorf("payload into %s: %w", et.goType, err)}
	}
	return e, nil
}
