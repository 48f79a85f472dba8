package outbox

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

// ErrInvalidEvent is returned when an event to write lacks a field the
// outbox needs, or its payload cannot be encoded.
var ErrInvalidEvent = errors.New("outbox: invalid event")

// Encode checks events and encodes their payloads with reg, the one
// registry of the service, as a [Source] stores them. Events without an
// occurred-at time get the current time. It is for Source
// implementations; Seq and Attempts of the results are zero.
func Encode(reg *eventbus.Registry, events ...aggregate.Envelope) ([]Pending, error) {
	if reg == nil {
		return nil, errors.New("outbox: encode: nil registry")
	}
	out := make([]Pending, len(events))
	var now time.Time
	for i, env := range events {
		if err := checkEnvelope(env); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		payload, version, err := reg.EncodePayload(env.Payload)
		if err != nil {
			return nil, fmt.Errorf("%w: event %d (%s %s): %w", ErrInvalidEvent, i, env.Name, env.ID, err)
		}
		if env.OccurredAt.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			env.OccurredAt = now
		}
		env.Metadata = env.Metadata.Clone()
		out[i] = Pending{Event: env, SchemaVersion: version, Payload: payload}
	}
	return out, nil
}

func checkEnvelope(env aggregate.Envelope) error {
	var missing []string
	if env.ID == "" {
		missing = append(missing, "ID")
	}
	if env.Name == "" {
		missing = append(missing, "Name")
	}
	if env.AggregateType == "" {
		missing = append(missing, "AggregateType")
	}
	if env.AggregateID == "" {
		missing = append(missing, "AggregateID")
	}
	if env.Payload == nil {
		missing = append(missing, "Payload")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s %s: missing %s", ErrInvalidEvent, env.Name, env.ID, strings.Join(missing, ", "))
	}
	if name := env.Payload.EventName(); name != env.Name {
		return fmt.Errorf("%w: %s %s: the payload's name is %q", ErrInvalidEvent, env.Name, env.ID, name)
	}
	return nil
}
