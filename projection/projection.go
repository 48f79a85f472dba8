package projection

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// ErrNoResetHandler is returned by a rebuild of a projection that has no
// [Projection.OnReset] handler: without one the old read model cannot be
// cleared, and replaying onto it would apply every event twice.
var ErrNoResetHandler = errors.New("projection: no OnReset handler")

// Projection is a read model's declaration: its name (the key of its
// checkpoint and of its inbox records), the event types it handles with
// one typed function each ([On]) and how to clear its read model
// ([Projection.OnReset]). One Projection value runs on either source: the
// event store's stream ([Runner]) or the event bus ([Projection.Subscribe]
// on a Router, or the Kafka consumers of package
// [github.com/dddkit/dddkit/kafka]).
//
// Declare everything before the projection runs; a Projection is not safe
// for concurrent declaration.
type Projection struct {
	name     string
	reg      *eventbus.Registry
	handlers map[string]handler // by event name
	order    []string           // event names in declaration order
	reset    func(ctx context.Context) error
	bus      busStats
}

// handler is one event type's function and the bindings the bus sources
// need.
type handler struct {
	typ   eventbus.EventType
	apply func(ctx context.Context, env aggregate.Envelope) error
	// handleOnce registers the type on a Router under name with inbox.
	handleOnce func(r *eventbus.Router, name string, inbox eventbus.Inbox) error
}

// New returns a projection called name whose event types are registered
// in reg, the service's one registry. The name is stored with its
// checkpoint and inbox records: keep it stable, and change it only to
// build a new read model beside the old one.
func New(name string, reg *eventbus.Registry) (*Projection, error) {
	var errs []error
	if name == "" {
		errs = append(errs, errors.New("projection: New: empty name"))
	}
	if reg == nil {
		errs = append(errs, errors.New("projection: New: nil Registry"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Projection{name: name, reg: reg, handlers: make(map[string]handler)}, nil
}

// Name returns the projection's name.
func (p *Projection) Name() string { return p.name }

// EventNames returns the names of the event types the projection
// handles, in the order they were declared.
func (p *Projection) EventNames() []string { return slices.Clone(p.order) }

// On declares that p handles events of type E with fn. E must be
// registered in p's registry (an error wrapping
// [eventbus.ErrNotRegistered] otherwise), and declared once.
//
// fn's ctx carries the transaction of the batch (with the PostgreSQL
// store or inbox a unit of work: postgres.TxFromContext returns it):
// write the read model in it, so that the read model and the
// projection's checkpoint commit together. fn can run more than once
// for an event when another event of its batch fails; only the run that
// committed counts. It must not have effects outside that transaction.
func On[E aggregate.Event](p *Projection, fn func(ctx context.Context, event E, env aggregate.Envelope) error) error {
	if p == nil {
		return errors.New("projection: On: nil Projection")
	}
	if fn == nil {
		return fmt.Errorf("projection %q: On: nil function", p.name)
	}
	typ, err := eventbus.TypeOf[E](p.reg)
	if err != nil {
		return fmt.Errorf("projection %q: %w", p.name, err)
	}
	if _, dup := p.handlers[typ.Name]; dup {
		return fmt.Errorf("projection %q: %s declared twice", p.name, typ.Name)
	}
	apply := func(ctx context.Context, env aggregate.Envelope) error {
		e, ok := env.Payload.(E)
		if !ok {
			return fmt.Errorf("projection %q: event %s %q: decoded %T, want %T", p.name, env.Name, env.ID, env.Payload, *new(E))
		}
		return fn(ctx, e, env)
	}
	bus := func(ctx context.Context, e E, env aggregate.Envelope) error { return fn(ctx, e, env) }
	p.handlers[typ.Name] = handler{
		typ:   typ,
		apply: apply,
		handleOnce: func(r *eventbus.Router, name string, inbox eventbus.Inbox) error {
			return eventbus.HandleOnce(r, name, inbox, bus, eventbus.FromTopic(typ.Topic))
		},
	}
	p.order = append(p.order, typ.Name)
	return nil
}

// OnReset sets the function that clears p's read model, which a rebuild
// ([Runner.Rebuild]) needs. It runs in the transaction that resets the
// projection's checkpoint (its ctx carries it, as a handler's does), so
// the read model and the checkpoint are cleared together.
func (p *Projection) OnReset(fn func(ctx context.Context) error) { p.reset = fn }

// apply runs the handler of env, turning a panic into an error.
func (p *Projection) apply(ctx context.Context, env aggregate.Envelope) (err error) {
	h, ok := p.handlers[env.Name]
	if !ok {
		return nil // not declared: a stream filter let it through; nothing to do
	}
	ctx, span := startApply(ctx, p.name, env)
	defer func() { telemetry.End(span, err) }()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("projection %q: event %s %q: panic: %v\n%s", p.name, env.Name, env.ID, r, debug.Stack())
		}
	}()
	return h.apply(aggregate.ContextWithMetadata(ctx, aggregate.CausedBy(env)), env)
}

// checkDeclared reports a projection that cannot run.
func (p *Projection) checkDeclared() error {
	if p == nil {
		return errors.New("projection: nil Projection")
	}
	if len(p.handlers) == 0 {
		return fmt.Errorf("projection %q: no event types declared (use projection.On)", p.name)
	}
	return nil
}
