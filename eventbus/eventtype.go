package eventbus

import (
	"errors"

	"github.com/dddkit/dddkit/aggregate"
)

// EventType describes a registered event type, for packages that build
// consumers on the registry (package projection).
type EventType struct {
	// Name is the stable event name (E.EventName()).
	Name string
	// Version is the schema version of the Go type.
	Version int
	// AggregateType is the aggregate type given with [AggregateType];
	// "" when none was.
	AggregateType string
	// Topic is the registry's topic of AggregateType; "" when the event
	// has no aggregate type.
	Topic string
}

// TypeOf returns what reg knows about event type E, or an error wrapping
// [ErrNotRegistered] when E was not registered.
func TypeOf[E aggregate.Event](reg *Registry) (EventType, error) {
	if reg == nil {
		return EventType{}, errors.New("eventbus: TypeOf on a nil Registry")
	}
	et, err := typeOf[E](reg)
	if err != nil {
		return EventType{}, err
	}
	t := EventType{Name: et.name, Version: et.version, AggregateType: et.aggregateType}
	if et.aggregateType != "" {
		t.Topic = reg.Topic(et.aggregateType)
	}
	return t, nil
}
