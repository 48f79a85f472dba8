package eventbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/dddkit/dddkit/aggregate"
)

// EncodePayload encodes a registered event as the bytes that the outbox
// and the event store keep and the wire carries (JSON), and returns the
// schema version of those bytes. Everything that writes events encodes
// them here, so an event that was never registered is refused when it is
// written (an error wrapping [ErrNotRegistered]), not when a consumer
// fails to read it.
func (r *Registry) EncodePayload(e aggregate.Event) (payload []byte, schemaVersion int, err error) {
	if e == nil {
		return nil, 0, errors.New("eventbus: encode: nil event")
	}
	et, ok := r.lookupType(reflect.TypeOf(e))
	if !ok {
		return nil, 0, fmt.Errorf("%w: %T (%s); register it with eventbus.Register", ErrNotRegistered, e, safeName(e))
	}
	payload, err = json.Marshal(e)
	if err != nil {
		return nil, 0, fmt.Errorf("eventbus: encode %s: %w", et.name, err)
	}
	return payload, et.version, nil
}

// DecodePayload decodes the payload of the event registered as name,
// written at schemaVersion (0 is read as 1), into the registered Go type,
// upcasting it first when it is older than the type ([Upcaster]). An
// unregistered name gives an error wrapping [ErrUnknownEvent]; a payload
// that cannot be decoded or upcast a [*DecodeError].
func (r *Registry) DecodePayload(name string, schemaVersion int, payload []byte) (aggregate.Event, error) {
	et, ok := r.lookupName(name)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownEvent, name)
	}
	if schemaVersion == 0 {
		schemaVersion = 1
	}
	return et.decodePayload("", schemaVersion, payload)
}

// decodePayload upcasts payload from schema version from and decodes it;
// eventID only names the event in the error.
func (et *eventType) decodePayload(eventID string, from int, payload []byte) (aggregate.Event, error) {
	payload, err := et.upcast(from, payload)
	if err != nil {
		return nil, &DecodeError{EventID: eventID, EventName: et.name, Err: err}
	}
	e, err := et.decode(payload)
	if err != nil {
		return nil, &DecodeError{EventID: eventID, EventName: et.name, Err: fmt.Errorf("payload into %s: %w", et.goType, err)}
	}
	return e, nil
}

// schemaVersion returns the schema version of e: e.EventVersion() when e
// implements [aggregate.Versioned] and that is at least 1, else 1.
func schemaVersion(e aggregate.Event) int {
	if v, ok := e.(aggregate.Versioned); ok {
		if n := v.EventVersion(); n >= 1 {
			return n
		}
	}
	return 1
}

// safeName returns e.EventName(), or "?" when it panics.
func safeName(e aggregate.Event) (name string) {
	defer func() {
		if recover() != nil {
			name = "?"
		}
	}()
	return e.EventName()
}
