package repository

import (
	"encoding/json"
	"errors"
	"slices"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/aggstore"
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
	m.Encode, m.Decode = jsonCodec(snapshot, restore)
	return m
}

// jsonCodec turns a copy-out function and a restore function of a
// JSON-encoded struct S into byte-level ones ([JSON], [JSONSnapshot]); a
// nil function stays nil, so that Validate reports it.
func jsonCodec[A aggregate.Aggregate, S any](take func(A) S, restore func(id string, s S) (A, error)) (func(A) ([]byte, error), func(id string, b []byte) (A, error)) {
	var (
		enc func(A) ([]byte, error)
		dec func(id string, b []byte) (A, error)
	)
	if take != nil {
		enc = func(a A) ([]byte, error) { return json.Marshal(take(a)) }
	}
	if restore != nil {
		dec = func(id string, b []byte) (A, error) {
			var s S
			if err := json.Unmarshal(b, &s); err != nil {
				var zero A
				return zero, err
			}
			return restore(id, s)
		}
	}
	return enc, dec
}

// Validate reports every missing field at once. The adapters call it.
func (m *Mapping[A]) Validate() error {
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

// KeysOf returns the unique keys of a (Mapping.Keys), without empty
// values and duplicates. The adapters call it.
func (m *Mapping[A]) KeysOf(a A) []Key {
	if m.Keys == nil {
		return nil
	}
	keys := m.Keys(a)
	out := keys[:0:0]
	for _, k := range keys {
		if k.Value == "" || slices.Contains(out, k) {
			continue
		}
		out = append(out, k)
	}
	return out
}

func (m *Mapping[A]) encode(root *aggregate.Root, a A) ([]byte, error) {
	return aggstore.EncodeState(m.Type, root.ID(), m.Encode, a)
}

func (m *Mapping[A]) decode(id string, version int64, state []byte, opts ...aggregate.Option) (A, error) {
	return aggstore.DecodeState(m.Type, id, version, state, m.Decode, opts)
}
