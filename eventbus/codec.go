package eventbus

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
)

// Encode turns env into a watermill message, a CloudEvent in the binary
// mode of the Kafka binding: the payload encoded by
// [Registry.EncodePayload], the envelope fields, the registry's source
// ([RegistryConfig.Source]), the schema version and the metadata as
// headers (see [HeaderEventID] and the other header names), and the event
// ID as message UUID. This is the message the outbox relay publishes for
// the same envelope.
//
// env needs an ID, a payload of a registered type and an aggregate type
// and ID; an empty Name is taken from the payload, a different one is an
// error. The registry needs a source ([Registry.CheckSource]).
func (r *Registry) Encode(env aggregate.Envelope) (*message.Message, error) {
	if env.Payload == nil {
		return nil, fmt.Errorf("eventbus: encode event %q: no payload", env.ID)
	}
	name := safeName(env.Payload)
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
	errs = append(errs, r.CheckSource())
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("eventbus: encode event %s %q: %w", env.Name, env.ID, err)
	}
	payload, version, err := r.EncodePayload(env.Payload)
	if err != nil {
		return nil, fmt.Errorf("eventbus: encode event %s %q: %w", env.Name, env.ID, err)
	}
	return wire.ToMessage(env, r.source, payload, version), nil
}

// Decode turns a message into the envelope it carries, with the payload
// decoded into the registered Go type of its event name. A payload of an
// older schema version goes through the registered upcasters first. An
// unregistered name gives an error wrapping [ErrUnknownEvent] (and the
// envelope without payload); everything else that goes wrong is a
// [*DecodeError].
func (r *Registry) Decode(msg *message.Message) (aggregate.Envelope, error) {
	env, version, err := readEnvelope(msg)
	if err != nil {
		return env, err
	}
	et, ok := r.lookupName(env.Name)
	if !ok {
		return env, fmt.Errorf("%w %q (id %q)", ErrUnknownEvent, env.Name, env.ID)
	}
	env.Payload, err = et.decodePayload(env.ID, version, msg.Payload)
	return env, err
}

// readEnvelope reads the headers of msg: the envelope without payload and
// the schema version of the payload.
func readEnvelope(msg *message.Message) (aggregate.Envelope, int, error) {
	env, err := wire.FromMessage(msg)
	version, verr := wire.ParseEventVersion(msg.Metadata)
	var cerr error
	if ct := wire.ContentType(msg.Metadata); ct != "" && ct != wire.ContentTypeJSON {
		cerr = fmt.Errorf("content type %q, want %q", ct, wire.ContentTypeJSON)
	}
	if err := errors.Join(err, verr, cerr); err != nil {
		return env, version, &DecodeError{EventID: env.ID, EventName: env.Name, Err: err}
	}
	return env, version, nil
}
