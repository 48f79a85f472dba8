// Package aggstore holds what every repository adapter (in memory, the
// PostgreSQL ones) does the same way: checking an aggregate before a
// save, stamping its events with the request's metadata, building a
// loaded aggregate from stored state, and retrying Update on a
// concurrency conflict. One copy, so the adapters cannot drift apart.
package aggstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
	"github.com/dddkit/dddkit/retry"
)

// ErrNilAggregate is returned for a nil aggregate (or one whose
// AggregateRoot is nil).
var ErrNilAggregate = errors.New("repository: nil aggregate")

// RootOf returns a's root, or ErrNilAggregate for a nil aggregate.
func RootOf[A aggregate.Aggregate](a A) (r *aggregate.Root, err error) {
	defer func() {
		if recover() != nil {
			r, err = nil, ErrNilAggregate
		}
	}()
	r = a.AggregateRoot()
	if r == nil {
		return nil, ErrNilAggregate
	}
	return r, nil
}

// CheckSave returns a's root after checking that it can be saved by a
// repository of aggregateType.
func CheckSave[A aggregate.Aggregate](a A, aggregateType string) (*aggregate.Root, error) {
	root, err := RootOf(a)
	if err != nil {
		return nil, err
	}
	if root.Type() != aggregateType {
		return nil, fmt.Errorf("repository: save: aggregate %q has type %q, this repository stores %q", root.ID(), root.Type(), aggregateType)
	}
	if root.ID() == "" {
		return nil, fmt.Errorf("repository: save %s: aggregate has no ID (call Init)", aggregateType)
	}
	return root, nil
}

// PendingEvents returns root's uncommitted events with the metadata of
// ctx (aggregate.ContextWithMetadata) merged into theirs: what a save
// stores and hands to the outbox. When ctx has a span (tracing is on),
// its trace context replaces the events' own: their consumers continue
// the trace of the save.
func PendingEvents(ctx context.Context, root *aggregate.Root) []aggregate.Envelope {
	events := root.Changes()
	md := aggregate.MetadataFromContext(ctx)
	tp, ts, traced := telemetry.TraceContext(ctx)
	if md.IsZero() && !traced {
		return events
	}
	for i := range events {
		events[i].Metadata = events[i].Metadata.Merge(md)
		if traced {
			events[i].Metadata.TraceParent, events[i].Metadata.TraceState = tp, ts
		}
	}
	return events
}

// LoadOptions returns the options a load applies: the repository's
// configured ones, then the metadata of ctx merged over what they set.
func LoadOptions(ctx context.Context, configured []aggregate.Option) []aggregate.Option {
	md := aggregate.MetadataFromContext(ctx)
	if md.IsZero() {
		return configured
	}
	opts := make([]aggregate.Option, len(configured), len(configured)+1)
	copy(opts, configured)
	return append(opts, func(r *aggregate.Root) {
		aggregate.WithMetadata(md.Merge(r.Metadata()))(r)
	})
}

// EncodeState runs a mapping's Encode and checks that it returned a JSON
// document.
func EncodeState[A any](aggregateType, id string, encode func(A) ([]byte, error), a A) ([]byte, error) {
	state, err := encode(a)
	if err != nil {
		return nil, fmt.Errorf("repository: encode %s %s: %w", aggregateType, id, err)
	}
	if !json.Valid(state) {
		return nil, fmt.Errorf("repository: encode %s %s: Mapping.Encode returned no valid JSON document", aggregateType, id)
	}
	return state, nil
}

// DecodeState builds the aggregate stored at version from state with a
// mapping's Decode, checks it and restores it with opts.
func DecodeState[A aggregate.Aggregate](aggregateType, id string, version int64, state []byte, decode func(id string, state []byte) (A, error), opts []aggregate.Option) (A, error) {
	var zero A
	a, err := decode(id, state)
	if err != nil {
		return zero, fmt.Errorf("repository: decode %s %s: %w", aggregateType, id, err)
	}
	root, err := RootOf(a)
	if err != nil {
		return zero, fmt.Errorf("repository: decode %s %s: Mapping.Decode returned a nil aggregate", aggregateType, id)
	}
	if root.ID() != id || root.Type() != aggregateType {
		return zero, fmt.Errorf("repository: decode %s %s: Mapping.Decode returned an aggregate with id %q and type %q (call Init with the stored ID and type)", aggregateType, id, root.ID(), root.Type())
	}
	if root.HasChanges() {
		return zero, fmt.Errorf("repository: decode %s %s: Mapping.Decode returned an aggregate with uncommitted events", aggregateType, id)
	}
	if err := aggregate.Restore(root, version, opts...); err != nil {
		return zero, fmt.Errorf("repository: decode %s %s: %w", aggregateType, id, err)
	}
	return a, nil
}

// DefaultRetry is what the zero fields of a repository's Retry policy
// mean: 3 attempts, 10ms, 1s.
var DefaultRetry = retry.Policy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second}

// Retry re-runs Update's load → change → save cycle on a concurrency
// conflict.
type Retry struct {
	policy retry.Policy
	on     bool
}

// NewRetry validates p (nil = no retry); field names it in errors.
func NewRetry(p *retry.Policy, field string) (Retry, error) {
	if p == nil {
		return Retry{}, nil
	}
	if err := p.Validate(); err != nil {
		return Retry{}, fmt.Errorf("repository: %s: %w", field, err)
	}
	return Retry{policy: p.WithDefaults(DefaultRetry), on: true}, nil
}

// Run runs attempt, again after each concurrency conflict while the
// policy allows. On giving up it returns the retry error (which wraps the
// last conflict) prefixed with what.
func (r Retry) Run(ctx context.Context, what string, attempt func(ctx context.Context) error) error {
	if !r.on {
		return attempt(ctx)
	}
	var last error
	err := r.policy.Do(ctx, isConflict, func(ctx context.Context) error {
		last = attempt(ctx)
		return last
	})
	if err != nil && err != last { //nolint:errorlint // identity: Do gave up (a *retry.Error), it did not pass the attempt's error through
		return fmt.Errorf("repository: %s: %w", what, err)
	}
	return err
}

func isConflict(err error) bool { return errors.Is(err, aggregate.ErrConcurrencyConflict) }

// Rebuild checks a, the empty aggregate an event-sourced mapping built
// (EventMapping.New, or a snapshot's Restore; what names it in errors),
// sets it to version base (the snapshot's version; 0 without one),
// replays history (the events after base) onto it and applies opts.
// Every event-sourced adapter loads through it.
func Rebuild[A aggregate.Aggregate](aggregateType, id, what string, a A, base int64, history []aggregate.Envelope, opts []aggregate.Option) (A, error) {
	var zero A
	root, err := RootOf(a)
	if err != nil {
		return zero, fmt.Errorf("repository: load %s %s: %s returned a nil aggregate", aggregateType, id, what)
	}
	if root.ID() != id || root.Type() != aggregateType || root.Version() != 0 || root.HasChanges() {
		return zero, fmt.Errorf("repository: load %s %s: %s returned an aggregate with id %q, type %q, version %d (want an empty one, Init'ed with the ID and type)",
			aggregateType, id, what, root.ID(), root.Type(), root.Version())
	}
	if base > 0 {
		if err := aggregate.Restore(root, base); err != nil {
			return zero, fmt.Errorf("repository: load %s %s: %w", aggregateType, id, err)
		}
	}
	if err := aggregate.Replay(root, history, opts...); err != nil {
		return zero, fmt.Errorf("repository: load %s %s: %w", aggregateType, id, err)
	}
	return a, nil
}

// Key names one aggregate: its type and ID. The adapters, the outbox
// relay and its PostgreSQL source key their per-aggregate state by it.
type Key struct{ Type, ID string }

// KeyOf returns the key of env's aggregate.
func KeyOf(env *aggregate.Envelope) Key { return Key{env.AggregateType, env.AggregateID} }
