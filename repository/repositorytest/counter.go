package repositorytest

import (
	"testing"

	"fmt"
	"github.com/dddkit/dddkit/eventbus"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/repository"
)

// CounterType is the aggregate type of [Counter].
const CounterType = "repositorytest.counter"

// Counter is the aggregate the suite stores: a named integer. Its name is a
// unique key (see [Mapping]).
type Counter struct {
	aggregate.Root
	name  string
	value int
}

// Events of [Counter].
type (
	// CounterCreated is recorded by [NewCounter].
	CounterCreated struct{ Name string }
	// CounterAdded is recorded by [Counter.Add].
	CounterAdded struct{ N int }
	// CounterRenamed is recorded by [Counter.Rename].
	CounterRenamed struct{ Name string }
)

// EventName implements aggregate.Event.
func (CounterCreated) EventName() string { return "repositorytest.counter_created" }

// EventName implements aggregate.Event.
func (CounterAdded) EventName() string { return "repositorytest.counter_added" }

// EventName implements aggregate.Event.
func (CounterRenamed) EventName() string { return "repositorytest.counter_renamed" }

// NewCounter returns a new counter at zero; it records [CounterCreated].
// opts configure its root, as in [aggregate.Root.Init].
func NewCounter(id, name string, opts ...aggregate.Option) (*Counter, error) {
	return NewCounterOfType(CounterType, id, name, opts...)
}

// NewCounterOfType is [NewCounter] for an aggregate type other than
// [CounterType] (see [EventMappingOf]): the stream suite stores counters
// of two types.
func NewCounterOfType(aggregateType, id, name string, opts ...aggregate.Option) (*Counter, error) {
	c := &Counter{}
	c.Init(id, aggregateType, c.apply, opts...)
	if err := c.Record(CounterCreated{Name: name}); err != nil {
		return nil, err
	}
	return c, nil
}

// Add adds n, which must not be zero; it records [CounterAdded].
func (c *Counter) Add(n int) error {
	if n == 0 {
		return fmt.Errorf("counter %s: adding zero changes nothing", c.ID())
	}
	return c.Record(CounterAdded{N: n})
}

// Rename changes the name; it records [CounterRenamed].
func (c *Counter) Rename(name string) error { return c.Record(CounterRenamed{Name: name}) }

// Name returns the counter's name.
func (c *Counter) Name() string { return c.name }

// Value returns the counter's value.
func (c *Counter) Value() int { return c.value }

func (c *Counter) apply(e aggregate.Event) error {
	switch e := e.(type) {
	case CounterCreated:
		c.name = e.Name
	case CounterAdded:
		c.value += e.N
	case CounterRenamed:
		c.name = e.Name
	default:
		return fmt.Errorf("unknown event %T", e)
	}
	return nil
}

type counterState struct {
	Name  string `json:"name"`
	Value int    `json:"value"`
}

// Mapping returns the [repository.Mapping] of [Counter]: JSON state and
// the name as unique key "name".
func Mapping() repository.Mapping[*Counter] {
	m := repository.JSON(CounterType,
		func(c *Counter) counterState { return counterState{Name: c.name, Value: c.value} },
		func(id string, s counterState) (*Counter, error) {
			c := &Counter{name: s.Name, value: s.Value}
			c.Init(id, CounterType, c.apply)
			return c, nil
		})
	m.Keys = func(c *Counter) []repository.Key { return []repository.Key{{Name: "name", Value: c.name}} }
	return m
}

// EventMapping is the event-sourced mapping of Counter.
func EventMapping() repository.EventMapping[*Counter] { return EventMappingOf(CounterType) }

// EventMappingOf is the event-sourced mapping of counters of
// aggregateType (see [NewCounterOfType]).
func EventMappingOf(aggregateType string) repository.EventMapping[*Counter] {
	return repository.EventMapping[*Counter]{
		Type: aggregateType,
		New: func(id string) *Counter {
			c := &Counter{}
			c.Init(id, aggregateType, c.apply)
			return c
		},
	}
}

// Registry returns a new event registry with Counter's events, the one an
// adapter's outbox (and event store) must encode them with.
func Registry(t testing.TB) *eventbus.Registry {
	t.Helper()
	reg := eventbus.NewRegistry(nil)
	for _, err := range []error{
		eventbus.Register[CounterCreated](reg, eventbus.AggregateType(CounterType)),
		eventbus.Register[CounterAdded](reg, eventbus.AggregateType(CounterType)),
		eventbus.Register[CounterRenamed](reg, eventbus.AggregateType(CounterType)),
	} {
		if err != nil {
			t.Fatalf("repositorytest: registry: %v", err)
		}
	}
	return reg
}
