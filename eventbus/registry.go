package eventbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/dddkit/dddkit/aggregate"
)

// UpcastFunc turns the JSON payload of one schema version of an event into
// the next version's JSON. It is registered with [Upcaster] and runs on
// consume, before the payload is decoded into the Go type. It must be a
// pure function of its input.
type UpcastFunc func(payload json.RawMessage) (json.RawMessage, error)

// TopicFunc maps an aggregate type ("user") to the topic its events are
// published on. It is configured once, in [RegistryConfig.Topic]: the
// outbox relay, a [Publisher] and the consumers all ask the registry
// ([Registry.Topic]), so they cannot disagree.
type TopicFunc func(aggregateType string) string

// DefaultTopic is the topic rule unless [RegistryConfig.Topic] says
// otherwise: the aggregate type followed by ".events" ("user" →
// "user.events"). Characters Kafka does not allow in topic names
// (anything but ASCII letters, digits, '.', '_' and '-') are replaced by
// '_'; an empty type gives "events".
func DefaultTopic(aggregateType string) string {
	if aggregateType == "" {
		return "events"
	}
	b := []byte(aggregateType)
	for i, c := range b {
		if !topicChar(c) {
			b[i] = '_'
		}
	}
	return string(b) + ".events"
}

func topicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// RegistryConfig configures a [Registry]. The zero value and nil are the
// defaults.
type RegistryConfig struct {
	// Topic maps an aggregate type to its topic. nil means [DefaultTopic].
	// It is the one topic rule of a service: the outbox relay publishes
	// by it and the consumers subscribe by it.
	Topic TopicFunc
}

// Registry maps stable event names to Go types and back, knows each
// type's schema version and upcasters, and encodes and decodes events.
// One registry serves a whole service: the event store's loads and the
// outbox's writes ([Registry.EncodePayload], [Registry.DecodePayload]),
// its publishers and its consumers ([Registry.Encode], [Registry.Decode],
// [Router]), and the topic rule of all of them ([Registry.Topic]). It is
// safe for concurrent use; registration is meant for start-up.
type Registry struct {
	topic TopicFunc

	mu     sync.RWMutex
	byName map[string]*eventType
	byType map[reflect.Type]*eventType
}

// NewRegistry returns an empty registry. A nil cfg means the defaults.
func NewRegistry(cfg *RegistryConfig) *Registry {
	r := &Registry{
		topic:  DefaultTopic,
		byName: make(map[string]*eventType),
		byType: make(map[reflect.Type]*eventType),
	}
	if cfg != nil && cfg.Topic != nil {
		r.topic = cfg.Topic
	}
	return r
}

// eventType is what the registry knows about one event type.
type eventType struct {
	name          string
	goType        reflect.Type
	version       int
	aggregateType string
	upcasters     map[int]UpcastFunc // from version → to version+1
	decode        func(payload []byte) (aggregate.Event, error)
}

// RegisterOption configures one registration; see [Register].
type RegisterOption func(*registration)

type registration struct {
	aggregateType string
	upcasters     map[int]UpcastFunc
	errs          []error
}

// AggregateType names the type of aggregate that records the event
// ("user"). The event's topic is the registry's [TopicFunc] of it, the
// topic [Handle] subscribes to.
func AggregateType(aggregateType string) RegisterOption {
	return func(r *registration) {
		if aggregateType == "" {
			r.errs = append(r.errs, errors.New("AggregateType is empty"))
		}
		r.aggregateType = aggregateType
	}
}

// Upcaster registers fn to turn the payload of schema version from into
// version from+1. An event type at version n needs one upcaster for each
// older version still found on its topics; a message of a version without
// an upcaster path to n is dead-lettered with a [*DecodeError].
func Upcaster(from int, fn UpcastFunc) RegisterOption {
	return func(r *registration) {
		switch {
		case fn == nil:
			r.errs = append(r.errs, fmt.Errorf("Upcaster(%d): nil function", from))
		case from < 1:
			r.errs = append(r.errs, fmt.Errorf("Upcaster(%d): versions start at 1", from))
		case r.upcasters[from] != nil:
			r.errs = append(r.errs, fmt.Errorf("Upcaster(%d): registered twice", from))
		default:
			if r.upcasters == nil {
				r.upcasters = make(map[int]UpcastFunc)
			}
			r.upcasters[from] = fn
		}
	}
}

// Register adds the event type E under its stable name, E.EventName().
// Its schema version is E.EventVersion() when E implements
// [aggregate.Versioned], else 1. Options name its aggregate type
// ([AggregateType]) and its [Upcaster]s.
//
// It is an error to register a second type under a name already taken
// ([ErrDuplicateEvent]), the same type twice, a type whose EventName is
// empty, or an upcaster from a version that is not older than the type's.
//
// Register also refuses, with [ErrLossyEvent] and the path of every field
// concerned, a type that would not arrive as it was sent: a field that
// encoding/json drops without a word (an unexported field, a value object
// whose fields are all unexported — Money{amount, currency} would travel
// as {}), cannot encode or cannot decode. It walks the type and sends a
// value filled with sample data through the codec and back. A type with
// its own encoding (MarshalJSON and UnmarshalJSON, or MarshalText and
// UnmarshalText, as time.Time has) is taken as it is; a field tagged
// `json:"-"` is left out on purpose and not checked.
func Register[E aggregate.Event](r *Registry, opts ...RegisterOption) error {
	if r == nil {
		return errors.New("eventbus: Register on a nil Registry")
	}
	goType := reflect.TypeFor[E]()
	zero, err := zeroEvent[E]()
	if err != nil {
		return fmt.Errorf("eventbus: register %s: %w", goType, err)
	}
	name, err := eventName(zero)
	if err != nil {
		return fmt.Errorf("eventbus: register %s: %w", goType, err)
	}
	reg := registration{}
	for _, o := range opts {
		if o != nil {
			o(&reg)
		}
	}
	version := schemaVersion(zero)
	for from := range reg.upcasters {
		if from >= version {
			reg.errs = append(reg.errs, fmt.Errorf("Upcaster(%d): the type is at version %d, upcasters go from older versions only", from, version))
		}
	}
	decode := func(payload []byte) (aggregate.Event, error) {
		var e E
		if err := json.Unmarshal(payload, &e); err != nil {
			return nil, err
		}
		if v := reflect.ValueOf(any(e)); !v.IsValid() || v.Kind() == reflect.Pointer && v.IsNil() {
			return nil, errors.New("payload is null")
		}
		return e, nil
	}
	if err := checkLossless(goType, decode); err != nil {
		reg.errs = append(reg.errs, err)
	}
	if err := errors.Join(reg.errs...); err != nil {
		return fmt.Errorf("eventbus: register %s (%s): %w", name, goType, err)
	}

	et := &eventType{
		name:          name,
		goType:        goType,
		version:       version,
		aggregateType: reg.aggregateType,
		upcasters:     reg.upcasters,
		decode:        decode,
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if prev, ok := r.byName[name]; ok {
		if prev.goType == goType {
			return fmt.Errorf("%w: %s (%s) registered twice", ErrDuplicateEvent, name, goType)
		}
		return fmt.Errorf("%w: %s is %s, cannot also be %s", ErrDuplicateEvent, name, prev.goType, goType)
	}
	if prev, ok := r.byType[goType]; ok {
		return fmt.Errorf("%w: %s is already registered as %s", ErrDuplicateEvent, goType, prev.name)
	}
	r.byName[name] = et
	r.byType[goType] = et
	return nil
}

// zeroEvent returns a usable zero value of E: for a pointer type a pointer
// to a zero value, so that calling EventName on it does not dereference
// nil.
func zeroEvent[E aggregate.Event]() (E, error) {
	var zero E
	t := reflect.TypeFor[E]()
	switch t.Kind() {
	case reflect.Interface:
		return zero, errors.New("the type parameter must be a concrete event type, not an interface")
	case reflect.Pointer:
		v, ok := reflect.New(t.Elem()).Interface().(E)
		if !ok {
			return zero, errors.New("cannot build a zero value")
		}
		return v, nil
	}
	return zero, nil
}

// eventName calls e.EventName(), turning a panic into an error.
func eventName(e aggregate.Event) (name string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("EventName panicked on the zero value: %v", p)
		}
	}()
	name = e.EventName()
	if name == "" {
		return "", errors.New("EventName() is empty")
	}
	return name, nil
}

// lookupType returns the registration of Go type t.
func (r *Registry) lookupType(t reflect.Type) (*eventType, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	et, ok := r.byType[t]
	return et, ok
}

// lookupName returns the registration of an event name.
func (r *Registry) lookupName(name string) (*eventType, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	et, ok := r.byName[name]
	return et, ok
}

func typeOf[E aggregate.Event](r *Registry) (*eventType, error) {
	et, ok := r.lookupType(reflect.TypeFor[E]())
	if !ok {
		return nil, fmt.Errorf("%w: %s (call eventbus.Register first)", ErrNotRegistered, reflect.TypeFor[E]())
	}
	return et, nil
}

// Topic returns the topic of an aggregate type under the registry's
// [TopicFunc].
func (r *Registry) Topic(aggregateType string) string { return r.topic(aggregateType) }

// AggregateTypeOf returns the aggregate type event name was registered
// with ([AggregateType]); ok is false when the name is not registered.
// The type is "" for an event registered without one.
func (r *Registry) AggregateTypeOf(name string) (aggregateType string, ok bool) {
	et, ok := r.lookupName(name)
	if !ok {
		return "", false
	}
	return et.aggregateType, true
}

// upcast brings payload from schema version from to the registered
// version.
func (et *eventType) upcast(from int, payload []byte) ([]byte, error) {
	if from > et.version {
		return nil, fmt.Errorf("schema version %d is newer than the %d this service knows", from, et.version)
	}
	for v := from; v < et.version; v++ {
		fn := et.upcasters[v]
		if fn == nil {
			return nil, fmt.Errorf("no upcaster from schema version %d to %d", v, v+1)
		}
		out, err := fn(json.RawMessage(payload))
		if err != nil {
			return nil, fmt.Errorf("upcast from schema version %d to %d: %w", v, v+1, err)
		}
		payload = out
	}
	return payload, nil
}
