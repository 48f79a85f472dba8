package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/deadline"
	"github.com/dddkit/dddkit/eventbus"
)

// ErrNoBus is returned by [Dispatch] in a process whose [Config] has
// no Bus, and ErrNoScheduler by [Context.Schedule] and [Context.Cancel]
// in one without a Scheduler. Both are [eventbus.Permanent].
var (
	ErrNoBus       = errors.New("process: no cqrs.Bus configured")
	ErrNoScheduler = errors.New("process: no deadline.Scheduler configured")
)

// Config configures a [Manager]. Nil means the defaults: no bus, no
// scheduler, the router's handler defaults, slog.Default().
type Config struct {
	// Bus runs the commands the handlers dispatch with [Dispatch].
	Bus *cqrs.Bus

	// Scheduler schedules and cancels the handlers' deadlines
	// ([Context.Schedule]). It must write in the Store's transaction
	// for a deadline to commit with the state: with the PostgreSQL
	// store, the *postgres.Outbox of the same database; in memory, the
	// *outbox.Memory.
	Scheduler deadline.Scheduler

	// HandlerOptions are passed to every handler the Manager registers
	// on the router (such as eventbus.DeadLetterTopic).
	HandlerOptions []eventbus.HandlerOption

	// Logger receives a debug line for each event ignored because its
	// instance has ended or was never started. Nil means slog.Default().
	Logger *slog.Logger
}

// Manager is a process manager: it reacts to events of several types
// (and topics), keeps a state of type S per instance, an instance being
// the events that share a correlation key (an order ID, a user ID), and
// can dispatch commands, schedule and cancel deadlines, and end.
//
// Register its events with [StartOn] and [On]. S is stored as JSON
// (exported fields, or a MarshalJSON/UnmarshalJSON pair).
type Manager[S any] struct {
	name   string
	router *eventbus.Router
	store  Store
	cfg    Config

	mu     sync.Mutex
	events map[string]bool // event names with a handler
}

// New returns the process manager name, consuming from r and keeping
// its instances in store. name identifies the process in the store (and
// its inbox records): keep it stable. The handlers it registers on r
// are named name+"@"+topic: one consumer (a Kafka consumer group) per
// topic its events come from, so the events of one topic reach it in
// order.
func New[S any](r *eventbus.Router, name string, store Store, cfg *Config) (*Manager[S], error) {
	var errs []error
	if r == nil {
		errs = append(errs, errors.New("process: New: nil Router"))
	}
	if name == "" {
		errs = append(errs, errors.New("process: New: empty name"))
	}
	if store == nil {
		errs = append(errs, errors.New("process: New: nil Store"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := Config{}
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Manager[S]{name: name, router: r, store: store, cfg: c, events: make(map[string]bool)}, nil
}

// Name returns the process's name.
func (m *Manager[S]) Name() string { return m.name }

// Load returns the state of instance key, whether it has ended, and
// whether it exists; for tests and inspection.
func (m *Manager[S]) Load(ctx context.Context, key string) (state S, ended, found bool, err error) {
	inst, found, err := m.store.Load(ctx, m.name, key)
	if err != nil || !found {
		return state, false, false, err
	}
	if err := json.Unmarshal(inst.State, &state); err != nil {
		return state, false, false, fmt.Errorf("process %q: decode the state of %q: %w", m.name, key, err)
	}
	return state, inst.Ended, true, nil
}

// KeyFunc returns the correlation key of the instance an event belongs
// to. An empty key ignores the event.
type KeyFunc[E aggregate.Event] func(event E, env aggregate.Envelope) string

// Handler handles event E for one instance: state is its state, to
// change in place (the zero S for an instance that [StartOn] starts),
// and pc dispatches commands ([Dispatch]), schedules and cancels
// deadlines and ends the instance. ctx carries the Store's transaction
// (with the PostgreSQL store, a unit of work that repositories, the
// outbox and postgres.TxFromContext join) and the event's metadata
// (correlation ID, the event as causation).
//
// Returning nil saves the state, records the event as applied and
// commits; an error rolls all of that back and the event is retried and
// dead-lettered like any handler's (see eventbus.RouterConfig.Retry).
type Handler[S any, E aggregate.Event] func(ctx context.Context, state *S, event E, env aggregate.Envelope, pc *Context) error

// StartOn registers fn for events of type E that start an instance:
// when the instance of the event's key does not exist, it begins with
// the zero S. An event of an instance that has ended is ignored.
func StartOn[S any, E aggregate.Event](m *Manager[S], key KeyFunc[E], fn Handler[S, E]) error {
	return on(m, true, key, fn)
}

// On registers fn for events of type E of a running instance: an event
// whose instance does not exist (was never started) or has ended is
// ignored.
func On[S any, E aggregate.Event](m *Manager[S], key KeyFunc[E], fn Handler[S, E]) error {
	return on(m, false, key, fn)
}

func on[S any, E aggregate.Event](m *Manager[S], starts bool, key KeyFunc[E], fn Handler[S, E]) error {
	if m == nil {
		return errors.New("process: On: nil Manager")
	}
	if key == nil || fn == nil {
		return fmt.Errorf("process %q: On: nil key or handler function", m.name)
	}
	name, err := eventName[E]()
	if err != nil {
		return fmt.Errorf("process %q: %w", m.name, err)
	}
	reg := m.router.Registry()
	typ, ok := reg.AggregateTypeOf(name)
	switch {
	case !ok:
		return fmt.Errorf("process %q: %w: %s (call eventbus.Register first)", m.name, eventbus.ErrNotRegistered, name)
	case typ == "":
		return fmt.Errorf("process %q: event %s has no topic: register it with eventbus.AggregateType(...)", m.name, name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.events[name] {
		return fmt.Errorf("%w: process %q already handles %s", eventbus.ErrDuplicateHandler, m.name, name)
	}
	handler := m.name + "@" + reg.Topic(typ)
	err = eventbus.Handle(m.router, handler, func(ctx context.Context, e E, env aggregate.Envelope) error {
		k := key(e, env)
		if k == "" {
			return nil
		}
		_, err := m.store.Apply(ctx, m.name, k, env, func(ctx context.Context, inst *Instance) error {
			if inst.Ended || (inst.State == nil && !starts) {
				what := "ended"
				if !inst.Ended {
					what = "not started"
				}
				m.cfg.Logger.DebugContext(ctx, "process: event of an instance that is "+what+", ignored",
					"process", m.name, "key", k, "event", env.Name, "event_id", env.ID)
				return nil
			}
			var s S
			if inst.State != nil {
				if err := json.Unmarshal(inst.State, &s); err != nil {
					return eventbus.Permanent(fmt.Errorf("process %q: decode the state of %q: %w", m.name, k, err))
				}
			}
			pc := &Context{process: m.name, key: k, isNew: inst.State == nil, bus: m.cfg.Bus, sched: m.cfg.Scheduler}
			if err := fn(ctx, &s, e, env, pc); err != nil {
				return err
			}
			b, err := json.Marshal(s)
			if err != nil {
				return eventbus.Permanent(fmt.Errorf("process %q: encode the state of %q: %w", m.name, k, err))
			}
			inst.State, inst.Ended = b, pc.ended
			return nil
		})
		return err
	}, m.cfg.HandlerOptions...)
	if err != nil {
		return fmt.Errorf("process %q: %w", m.name, err)
	}
	m.events[name] = true
	return nil
}

// eventName returns the name of event type E, from its zero value.
func eventName[E aggregate.Event]() (name string, err error) {
	defer func() {
		if recover() != nil {
			err = errors.New("EventName panics on the zero value of the event type; declare it on a value receiver")
		}
	}()
	var zero E
	return zero.EventName(), nil
}

// Context is what a [Handler] acts through on its instance: it
// schedules and cancels the instance's deadlines, ends the instance,
// and (with [Dispatch]) dispatches commands.
type Context struct {
	process, key string
	isNew        bool
	ended        bool
	bus          *cqrs.Bus
	sched        deadline.Scheduler
}

// Key returns the instance's correlation key.
func (c *Context) Key() string { return c.key }

// New reports whether the instance starts with this event.
func (c *Context) New() bool { return c.isNew }

// End ends the instance once the handler returns nil: its final state
// is kept, marked ended, and every later event of its key is ignored
// (acknowledged without running a handler). Deadlines it scheduled and
// did not cancel still fire; they are ignored too.
func (c *Context) End() { c.ended = true }

// Ended reports whether End was called.
func (c *Context) Ended() bool { return c.ended }

// DeadlineKey returns the key under which the instance's deadline name
// is scheduled: process/key/name.
func (c *Context) DeadlineKey(name string) string { return c.process + "/" + c.key + "/" + name }

// Schedule schedules event at at as the instance's deadline name,
// replacing the one scheduled under that name, in the Store's
// transaction (ctx). The event fires as any deadline does (see package
// deadline); handle its type with [On] to react to it, with a key
// function that finds the instance from its payload. It carries ctx's
// metadata: the correlation ID, and as causation the event being
// handled.
func (c *Context) Schedule(ctx context.Context, name string, at time.Time, event aggregate.Event) error {
	if c.sched == nil {
		return eventbus.Permanent(ErrNoScheduler)
	}
	return c.sched.Schedule(ctx, c.DeadlineKey(name), at, event)
}

// Cancel cancels the instance's deadline name and reports whether it
// was scheduled (false when it never was, was cancelled, or has fired).
func (c *Context) Cancel(ctx context.Context, name string) (bool, error) {
	if c.sched == nil {
		return false, eventbus.Permanent(ErrNoScheduler)
	}
	return c.sched.Cancel(ctx, c.DeadlineKey(name))
}

// Dispatch runs cmd on the process's bus with ctx: in the Store's
// transaction (a command handler's repository saves join it, with the
// PostgreSQL store) and with the event's metadata, so the events the
// command records have the event being handled as causation. A command
// without a handler or failing validation is [eventbus.Permanent]: the
// event is dead-lettered at once.
func Dispatch[C any](ctx context.Context, c *Context, cmd C) error {
	if c == nil || c.bus == nil {
		return eventbus.Permanent(ErrNoBus)
	}
	return exec(ctx, c.bus, c.process, cmd)
}

// exec runs cmd on bus, marking the errors that running it again cannot
// fix as permanent.
func exec[C any](ctx context.Context, bus *cqrs.Bus, who string, cmd C) error {
	if err := cqrs.Exec(ctx, bus, cmd); err != nil {
		err = fmt.Errorf("process %q: %w", who, err)
		if errors.Is(err, cqrs.ErrNoHandler) || errors.Is(err, cqrs.ErrResultType) || errors.Is(err, cqrs.ErrValidation) {
			return eventbus.Permanent(err)
		}
		return err
	}
	return nil
}
