package repository

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/aggregate"
)

// Mapping is the explicit code that turns an aggregate of type A into
// stored state and back. Each aggregate type supplies one; the adapters do
// everything else (versions, events, transactions, keys). There is no
// reflection and no struct tag on the domain type: the mapping lives in the
// adapter layer and calls the domain package's own constructors.
//
// Most mappings are built with [JSON] from a snapshot struct; a
// hand-written one looks like this:
//
//	repository.Mapping[*User]{
//		Type:   "user",
//		Encode: func(u *User) ([]byte, error) { return json.Marshal(userRow{Email: u.Email(), ...}) },
//		Decode: func(id string, b []byte) (*User, error) {
//			var r userRow
//			if err := json.Unmarshal(b, &r); err != nil {
//				return nil, err
//			}
//			return domain.UnmarshalUser(id, r.Email, ...) // Init'ed, fields set, no events
//		},
//		Keys: func(u *User) []repository.Key { return []repository.Key{{Name: "email", Value: u.Email()}} },
//	}
type Mapping[A aggregate.Aggregate] struct {
	// Type is the aggregate type, the one the aggregate passes to
	// [aggregate.Root.Init] (e.g. "user"). Stored with every row; a
	// repository refuses to save an aggregate of another type. Required.
	Type string

	// Encode returns the aggregate's state. The PostgreSQL adapter stores
	// it in a jsonb column, so it must be a JSON document; the in-memory
	// adapter checks that too, so that both behave alike. Version and
	// events are not part of it: the repository keeps those. Required.
	Encode func(a A) ([]byte, error)

	// Decode rebuilds an aggregate from the ID and the bytes Encode
	// produced. It must return an aggregate that is Init'ed with that ID
	// and Type and has no uncommitted events; the repository then calls
	// [aggregate.Restore] with the stored version. Required.
	Decode func(id string, state []byte) (A, error)

	// Keys, if set, returns the aggregate's unique secondary keys, such as
	// a user's email. No two aggregates of one type may hold the same key
	// (name and value): a save that would break that fails with a
	// [*DuplicateKeyError] and writes nothing. [KeyLoader.LoadByKey] finds
	// an aggregate by key. A key with an empty Value is ignored, so
	// optional keys simply return "". Keys are replaced on every save.
	Keys func(a A) []Key
}

// Key is a unique secondary key of an aggregate; see [Mapping.Keys].
type Key struct {
	Name  string // e.g. "email"
	Value string // e.g. "ada@example.com"; normalise it before returning it
}

// JSON builds a [Mapping] that stores the snapshot struct S as JSON:
// snapshot copies the aggregate's state into an S (typically a struct with
// json tags that lives in the adapter layer), restore builds the aggregate
// from the ID and a decoded S and must return it Init'ed (see
// [Mapping.Decode]). Set Keys on the result if the aggregate has unique
// secondary keys.
func JSON[A aggregate.Aggregate, S any](aggregateType string, snapshot func(A) S, restore func(id string, s S) (A, error)) Mapping[A] {
	m := Mapping[A]{Type: aggregateType}
	if snapshot != nil {
		m.Encode = func(a A) ([]byte, error) { return json.Marshal(snapshot(a)) }
	}
	if restore != nil {
		m.Decode = func(id string, b []byte) (A, error) {
			var s S
			if err := json.Unmarshal(b, &s); err != nil {
				var zero A
				return zero, err
			}
			return restore(id, s)
		}
	}
	return m
}

// validate reports every missing required field at once.
func (m *Mapping[A]) validate() error {
	var errs []error
	if m.Type == "" {
		errs = append(errs, errors.New("repository: Mapping.Type is empty"))
	}
	if m.Encode == nil {
		errs = append(errs, errors.New("repository: Mapping.Encode is nil"))
	}
	if m.Decode == nil {
		errs = append(errs, errors.New("repository: Mapping.Decode is nil"))
	}
	return errors.Join(errs...)
}

// encode runs Encode with the repository's error context.
func (m *Mapping[A]) encode(root *aggregate.Root, a A) ([]byte, error) {
	state, err := m.Encode(a)
	if err != nil {
		return nil, fmt.Errorf("repository: encode %s %s: %w", m.Type, root.ID(), err)
	}
	if !json.Valid(state) {
		return nil, fmt.Errorf("repository: encode %s %s: Mapping.Encode returned no valid JSON document", m.Type, root.ID())
	}
	return state, nil
}

// decode rebuilds the aggregate from a stored row and restores its
// version, applying opts to its root; it checks that Decode kept its side
// of the contract.
func (m *Mapping[A]) decode(id string, version int64, state []byte, opts ...aggregate.Option) (A, error) {
	var zero A
	a, err := m.Decode(id, state)
	if err != nil {
		return zero, fmt.Errorf("repository: decode %s %s: %w", m.Type, id, err)
	}
	root, err := rootOf(a)
	if err != nil {
		return zero, fmt.Errorf("repository: decode %s %s: Mapping.Decode returned a nil aggregate", m.Type, id)
	}
	if root.ID() != id || root.Type() != m.Type {
		return zero, fmt.Errorf("repository: decode %s %s: Mapping.Decode returned an aggregate with id %q and type %q (call Init with the stored ID and type)", m.Type, id, root.ID(), root.Type())
	}
	if root.HasChanges() {
		return zero, fmt.Errorf("repository: decode %s %s: Mapping.Decode returned an aggregate with uncommitted events", m.Type, id)
	}
	if err := aggregate.Restore(root, version, opts...); err != nil {
		return zero, fmt.Errorf("repository: decode %s %s: %w", m.Type, id, err)
	}
	return a, nil
}
