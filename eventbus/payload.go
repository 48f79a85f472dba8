package eventbus

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/dddkit/dddkit/aggregate"
)

// EncodePayload encodes a registered event as the bytes that the outbox
// stores and the wire carries, and returns the schema version of those
// bytes. The outbox and the event store encode every event through it,
// so an event that was never registered is refused when it is written
// ([ErrNotRegistered]), not when a consumer fails to read it.
func (r *Registry) EncodePayload(e aggregate.Event) (payload []byte, schemaVersion int, err error) {
	if e == nil {
		return nil, 0, fmt.Errorf("eventbus: encode: nil event")
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
// written at schemaVersion (0 is read as 1), upcasting it first when it
// is older than the registered type.
func (r *Registry) DecodePayload(name string, schemaVersion int, payload []byte) (aggregate.Event, error) {
	et, ok := r.lookupName(name)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownEvent, name)
	}
	if schemaVersion == 0 {
		schemaVersion = 1
	}
	payload, err := et.upcast(schemaVersion, payload)
	if err != nil {
		return nil, fmt.Errorf("eventbus: decode %s: %w", name, err)
	}
	e, err := et.decode(payload)
	if err != nil {
		return nil, fmt.Errorf("eventbus: decode %s into %s: %w", name, et.goType, err)
	}
	return e, nil
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
