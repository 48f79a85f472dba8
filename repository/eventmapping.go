package repository

import (
	"errors"

	"github.com/dddkit/dddkit/aggregate"
)

// EventMapping describes an event-sourced aggregate type to an event
// store (postgres.EventStore): how to make an empty aggregate. There is no
// state encoding; the events are the state, and the service's event
// registry (eventbus.Registry) encodes and decodes them.
type EventMapping[A aggregate.Aggregate] struct {
	// Type is the aggregate type, the one the aggregate passes to
	// [aggregate.Root.Init]. Required.
	Type string

	// New returns an empty aggregate, Init'ed with id and Type, with no
	// events; the store applies the history to it with
	// [aggregate.Replay]. Required.
	New func(id string) A
}

// Validate reports every missing field at once. The adapters call it.
func (m *EventMapping[A]) Validate() error {
	var errs []error
	if m.Type == "" {
		errs = append(errs, errors.New("repository: EventMapping.Type is empty"))
	}
	if m.New == nil {
		errs = append(errs, errors.New("repository: EventMapping.New is nil"))
	}
	return errors.Join(errs...)
}
