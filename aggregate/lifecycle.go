package aggregate

import (
	"fmt"
	"slices"
)

// This file holds the lifecycle operations that repository adapters perform
// on an aggregate: restore it from stored state, replay its history, mark
// it committed after a save. They are functions rather than methods of
// [Root] so that they are not promoted onto the aggregates that embed Root:
// application code sees only the domain surface (Record, ID, Version,
// Changes, ...), and user.MarkCommitted() does not compile.

// Restore finishes loading a state-stored aggregate. A repository's mapping
// first builds the aggregate from its stored state (Init'ed with its ID and
// type, fields set, no events recorded); Restore then sets the stored
// version, forgets any uncommitted event and applies opts to the root, such
// as the caller's [WithClock] and the request's [WithMetadata]. Afterwards
// [Root.Version] and [Root.CommittedVersion] are both version.
//
// It is meant for repository adapters, not for application code. An
// uninitialised root gives an error wrapping [ErrNotInitialized], a
// negative version an error; either way a is left as it was.
func Restore(a Aggregate, version int64, opts ...Option) error {
	r, err := rootOf(a)
	if err != nil {
		return err
	}
	if err := r.ready(); err != nil {
		return err
	}
	if version < 0 {
		return fmt.Errorf("aggregate: %s %s: negative version %d", r.typ, r.id, version)
	}
	r.version, r.committed, r.changes = version, version, nil
	r.configure(opts)
	return nil
}

// Replay rebuilds an event-sourced aggregate from its history: each event
// goes, in order, through the aggregate's [ApplyFunc], the same function
// that [Root.Record] calls, and the version advances by one per event.
// Nothing is left uncommitted. When every event has applied, opts are
// applied to the root, as with [Restore].
//
// The events' versions, when set, must follow on from the aggregate's
// current version (0 for an aggregate just Init'ed) without gaps; a gap or
// reordering, an event without payload or one the apply function refuses
// returns an error and leaves the aggregate at the last event that
// applied. An aggregate with uncommitted events is refused: history goes
// under them, not on top.
//
// It is meant for repository adapters and tests, not for application code.
func Replay(a Aggregate, history []Envelope, opts ...Option) error {
	r, err := rootOf(a)
	if err != nil {
		return err
	}
	if err := r.ready(); err != nil {
		return err
	}
	if len(r.changes) > 0 {
		return fmt.Errorf("aggregate: %s %s: replay onto %d uncommitted events", r.typ, r.id, len(r.changes))
	}
	for _, env := range history {
		want := r.version + 1
		if env.Version != 0 && env.Version != want {
			return fmt.Errorf("aggregate: %s %s: history out of order: event %s has version %d, want %d", r.typ, r.id, env.Name, env.Version, want)
		}
		if env.Payload == nil {
			return fmt.Errorf("aggregate: %s %s: history event %d has no payload", r.typ, r.id, want)
		}
		if err := r.apply(env.Payload); err != nil {
			return fmt.Errorf("aggregate: %s %s: apply %s (version %d): %w", r.typ, r.id, env.Payload.EventName(), want, err)
		}
		r.version = want
		r.committed = want
	}
	r.configure(opts)
	return nil
}

// MarkCommitted records that a repository's transaction saved a up to
// version and has committed: the events recorded up to version are no
// longer uncommitted, and version becomes a's committed version. Events
// recorded after it stay uncommitted, for the next save: a unit of work
// that saved a and then saw more events recorded on it marks committed
// only what it wrote.
//
// A repository calls it after the transaction that saved the aggregate
// and its events has committed, never before, with the version it wrote
// (a.Version() when it saved every event); a unit test may call it to
// stand for such a save. A version above a's current one counts as the
// current one; one at or below its committed version, and a nil
// aggregate, are ignored.
func MarkCommitted(a Aggregate, version int64) {
	r, err := rootOf(a)
	if err != nil {
		return
	}
	version = min(version, r.version)
	if version <= r.committed {
		return
	}
	// Record numbers the changes committed+1, committed+2, ...
	if rest := r.changes[version-r.committed:]; len(rest) > 0 {
		r.changes = slices.Clone(rest)
	} else {
		r.changes = nil
	}
	r.committed = version
}

// rootOf returns a's root, or an error wrapping [ErrNotInitialized] if a is
// nil: a nil interface, or a nil pointer whose promoted AggregateRoot
// dereferences nil.
func rootOf(a Aggregate) (r *Root, err error) {
	if a == nil {
		return nil, fmt.Errorf("%w: nil aggregate", ErrNotInitialized)
	}
	defer func() {
		if recover() != nil {
			r, err = nil, fmt.Errorf("%w: nil aggregate", ErrNotInitialized)
		}
	}()
	r = a.AggregateRoot()
	if r == nil {
		return nil, fmt.Errorf("%w: nil aggregate", ErrNotInitialized)
	}
	return r, nil
}
