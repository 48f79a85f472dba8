package aggregate

import (
	"fmt"
	"slices"
	"time"

	"github.com/dddkit/dddkit/internal/uuidv7"
)

// Aggregate is implemented by every type that embeds [Root]: the method is
// promoted from the embedded field. Repositories and the outbox use it to
// reach the root of any aggregate without knowing its concrete type.
type Aggregate interface {
	AggregateRoot() *Root
}

// ApplyFunc changes an aggregate's state to reflect one event. It is the
// single place where state changes; [Root.Record] and [Replay] call it. It
// returns an error only for an event it does not know, which is a
// programming error, never a business-rule violation: rules are checked
// before an event is recorded.
type ApplyFunc func(Event) error

// Clock returns the current time. Tests inject a fixed clock with
// [WithClock]; the default is time.Now.
type Clock func() time.Time

// Option configures a [Root]: in [Root.Init] when the aggregate is
// created, and in [Restore] or [Replay] when a repository loads it, so that
// a loaded aggregate behaves like a new one (the same clock, for one).
type Option func(*Root)

// WithClock makes the root stamp OccurredAt from c instead of time.Now.
func WithClock(c Clock) Option {
	return func(r *Root) {
		if c != nil {
			r.clock = c
		}
	}
}

// WithMetadata sets the metadata stamped on every event recorded from now
// on. Repositories pass it to [Restore] and [Replay] with the metadata of
// the request's context (see [ContextWithMetadata]), so that the events a
// loaded aggregate records carry the request's correlation and causation
// IDs; a constructor may pass it to [Root.Init].
func WithMetadata(md Metadata) Option {
	return func(r *Root) { r.metadata = md.Clone() }
}

// Root is embedded in an aggregate struct and keeps what every aggregate
// has: identity, type, version and the events recorded but not yet saved.
//
//	type User struct {
//		aggregate.Root
//		email string
//		verified bool
//	}
//
//	func NewUser(id, email string) (*User, error) {
//		u := &User{}
//		u.Init(id, "user", u.apply)
//		return u, u.Record(UserRegistered{Email: email})
//	}
//
// Versions: a new aggregate has version 0; each recorded event adds one.
// [Root.Version] includes uncommitted events, [Root.CommittedVersion] is the
// version the store has, which repositories use for optimistic concurrency.
//
// Its methods are the domain's view of the aggregate. What only a
// repository does — set the stored version ([Restore]), rebuild from
// history ([Replay]), forget saved events ([MarkCommitted]) — is done by
// functions of this package, not by methods, so that it is not part of
// the method set of the aggregates that embed Root.
//
// A Root is not safe for concurrent use; neither is the aggregate around it.
type Root struct {
	id        string
	typ       string
	apply     ApplyFunc
	clock     Clock
	metadata  Metadata
	version   int64 // including uncommitted events
	committed int64 // version of the stored state
	changes   []Envelope
}

// Init sets the aggregate's identity and the function that applies events
// to its state. It must be called before [Root.Record], [Replay] or
// [Restore]; typically the aggregate's constructor and its repository
// mapping call it.
func (r *Root) Init(id, aggregateType string, apply ApplyFunc, opts ...Option) {
	r.id = id
	r.typ = aggregateType
	r.apply = apply
	if r.clock == nil {
		r.clock = time.Now
	}
	r.configure(opts)
}

// configure applies opts in order; nil options are skipped.
func (r *Root) configure(opts []Option) {
	for _, o := range opts {
		if o != nil {
			o(r)
		}
	}
}

// AggregateRoot returns r; it makes every type that embeds Root an
// [Aggregate].
func (r *Root) AggregateRoot() *Root { return r }

// ID returns the aggregate's ID.
func (r *Root) ID() string { return r.id }

// Type returns the aggregate type, e.g. "user".
func (r *Root) Type() string { return r.typ }

// Version returns the current version, counting uncommitted events.
func (r *Root) Version() int64 { return r.version }

// CommittedVersion returns the version of the stored state: the version
// restored or replayed, or last saved. A repository saves only if the
// store still holds this version.
func (r *Root) CommittedVersion() int64 { return r.committed }

// IsNew reports whether the aggregate has never been saved.
func (r *Root) IsNew() bool { return r.committed == 0 }

// Metadata returns the metadata stamped on new events.
func (r *Root) Metadata() Metadata { return r.metadata }

func (r *Root) ready() error {
	if r.id == "" || r.typ == "" || r.apply == nil {
		return fmt.Errorf("%w: id=%q type=%q apply set=%t", ErrNotInitialized, r.id, r.typ, r.apply != nil)
	}
	return nil
}

// Record applies e to the aggregate's state and appends it to the
// uncommitted events, stamped with a new event ID, the next version, the
// clock's time and the root's metadata. State change and event happen in
// one call, so they cannot drift apart. If applying fails, nothing is
// recorded and the version does not move.
func (r *Root) Record(e Event) error {
	if err := r.ready(); err != nil {
		return err
	}
	if e == nil {
		return fmt.Errorf("aggregate: %s %s: Record(nil)", r.typ, r.id)
	}
	if err := r.apply(e); err != nil {
		return fmt.Errorf("aggregate: %s %s: apply %s: %w", r.typ, r.id, e.EventName(), err)
	}
	now := r.clock()
	r.version++
	r.changes = append(r.changes, Envelope{
		ID:            uuidv7.NewAt(now).String(),
		Name:          e.EventName(),
		AggregateType: r.typ,
		AggregateID:   r.id,
		Version:       r.version,
		OccurredAt:    now,
		Metadata:      r.metadata.Clone(),
		Payload:       e,
	})
	return nil
}

// Changes returns the events recorded since the last save, oldest first.
// The slice and the metadata in it are copies; changing them does not
// change the aggregate (the payloads are shared: treat events as immutable).
func (r *Root) Changes() []Envelope {
	out := slices.Clone(r.changes)
	for i := range out {
		out[i].Metadata = out[i].Metadata.Clone()
	}
	return out
}

// HasChanges reports whether there are uncommitted events.
func (r *Root) HasChanges() bool { return len(r.changes) > 0 }
