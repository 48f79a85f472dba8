package repository

import (
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/aggregate"
)

// EventMapping describes an event-sourced aggregate type to an event
// store (postgres.EventStore, [MemoryEventStore]): how to make an empty
// aggregate, and optionally how to snapshot it. There is no state
// encoding otherwise; the events are the state, and the service's event
// registry (eventbus.Registry) encodes and decodes them.
type EventMapping[A aggregate.Aggregate] struct {
	// Type is the aggregate type, the one the aggregate passes to
	// [aggregate.Root.Init]. Required.
	Type string

	// New returns an empty aggregate, Init'ed with id and Type, with no
	// events; the store applies the history to it with
	// [aggregate.Replay]. Required.
	New func(id string) A

	// Snapshot, if set, makes postgres.EventStore keep a snapshot of
	// each aggregate every Snapshot.Every events, so that a load replays
	// only the events after the newest snapshot. Optional; the in-memory
	// store ignores it.
	Snapshot *SnapshotMapping[A]
}

// SnapshotMapping says when and how an event store snapshots an
// aggregate type. A snapshot is the aggregate's state at a version,
// encoded by Take; a load restores it with Restore and replays only the
// later events. Snapshots are an optimisation: a load that finds none, or
// one of another schema Version, or one Restore refuses, replays every
// event instead and gives the same aggregate. [JSONSnapshot] builds one
// from a snapshot struct.
type SnapshotMapping[A aggregate.Aggregate] struct {
	// Every is how many events apart snapshots are taken: a save that
	// takes the aggregate's version across a multiple of Every stores a
	// snapshot of the aggregate as saved. Required, at least 1.
	Every int

	// Version is the schema version of the snapshot's state, at least 1.
	// Raise it whenever Take's output or Restore's input changes shape:
	// snapshots of other versions are then ignored (and replaced as the
	// aggregates are saved).
	Version int

	// Take returns the aggregate's state. Required.
	Take func(a A) ([]byte, error)

	// Restore rebuilds an aggregate from the ID and the bytes Take
	// produced. It must return an aggregate that is Init'ed with that ID
	// and the mapping's Type, at version 0 and without uncommitted
	// events, as [EventMapping.New] does; the store then sets its
	// version and replays the later events. Required.
	Restore func(id string, state []byte) (A, error)
}

// JSONSnapshot builds a [SnapshotMapping] that stores the snapshot struct
// S as JSON, as [JSON] does for state-stored aggregates: take copies the
// aggregate's state into an S, restore builds an Init'ed aggregate (no
// events, version 0) from the ID and a decoded S.
func JSONSnapshot[A aggregate.Aggregate, S any](every, version int, take func(A) S, restore func(id string, s S) (A, error)) *SnapshotMapping[A] {
	m := &SnapshotMapping[A]{Every: every, Version: version}
	m.Take, m.Restore = jsonCodec(take, restore)
	return m
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
	if s := m.Snapshot; s != nil {
		if s.Every < 1 {
			errs = append(errs, fmt.Errorf("repository: EventMapping.Snapshot.Every is %d, want at least 1", s.Every))
		}
		if s.Version < 1 {
			errs = append(errs, fmt.Errorf("repository: EventMapping.Snapshot.Version is %d, want at least 1", s.Version))
		}
		if s.Take == nil {
			errs = append(errs, errors.New("repository: EventMapping.Snapshot.Take is nil"))
		}
		if s.Restore == nil {
			errs = append(errs, errors.New("repository: EventMapping.Snapshot.Restore is nil"))
		}
	}
	return errors.Join(errs...)
}
