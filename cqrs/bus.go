package cqrs

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"

	"github.com/dddkit/dddkit/internal/telemetry"
)

// Kind tells commands and queries apart in a [Message], in log lines and in
// errors.
type Kind uint8

const (
	// KindCommand marks a command: a request to change state, handled by
	// exactly one handler, registered with [HandleCommand].
	KindCommand Kind = iota + 1
	// KindQuery marks a query: a request to read state, handled by exactly
	// one handler, registered with [HandleQuery].
	KindQuery
)

// String returns "command" or "query".
func (k Kind) String() string {
	switch k {
	case KindCommand:
		return "command"
	case KindQuery:
		return "query"
	default:
		return fmt.Sprintf("cqrs.Kind(%d)", uint8(k))
	}
}

// Message is a command or query on its way through the [Middleware] chain.
type Message struct {
	// Kind is KindCommand or KindQuery.
	Kind Kind
	// Name is the stable name of the command or query type: the result of
	// its CommandName or QueryName method, or else its Go type name, such
	// as "app.RegisterUser". See [HandleCommand].
	Name string
	// Payload is the command or query value itself, of the type its handler
	// was registered for. A middleware may replace it with another value of
	// that same type.
	Payload any
}

// HandlerFunc is the untyped form of a handler that [Middleware] wraps. The
// result is the typed handler's result, boxed.
type HandlerFunc func(ctx context.Context, msg Message) (any, error)

// Middleware wraps a handler with behaviour that applies to every command
// (or every query): logging, validation, panic recovery, retries,
// transactions, tracing, metrics.
//
// A middleware gets the next handler in the chain and returns a handler that
// usually calls it. It may change the context, refuse to call next (and
// return an error), call next several times, or change the result or error
// on the way out.
//
// Middlewares are given in [Config.CommandMiddleware] and
// [Config.QueryMiddleware] and apply in the order listed: the first is the
// outermost, it sees the message first and the result last. With
//
//	CommandMiddleware: []cqrs.Middleware{a, b, c}
//
// a dispatch runs a → b → c → handler → c → b → a. Middlewares are composed
// once, when a handler is registered, not on every dispatch.
type Middleware func(next HandlerFunc) HandlerFunc

// Config configures a [Bus]. The zero value (or a nil *Config) is a bus
// without middleware.
type Config struct {
	// CommandMiddleware wraps every command handler registered with
	// [HandleCommand]. The first middleware is the outermost. See
	// [Middleware] for the order and the package documentation for a
	// recommended stack.
	CommandMiddleware []Middleware

	// QueryMiddleware wraps every query handler registered with
	// [HandleQuery]; first is outermost, as for CommandMiddleware.
	QueryMiddleware []Middleware
}

// Bus is an in-process command bus and query bus: it routes each command and
// each query, by its Go type, to the one handler registered for that type and
// returns the handler's typed result.
//
// Register handlers at start-up with [HandleCommand] and [HandleQuery], list
// the commands and queries the application needs with [Bus.Expect] and call
// [Bus.Validate]; then dispatch with [Send], [Exec] and [Ask]. A Bus is safe
// for concurrent use: dispatching never takes a lock, and registering while
// dispatching is race-free (if unusual).
type Bus struct {
	commands registry
	queries  registry

	expectMu sync.Mutex
	expected []Expectation
}

// New returns a bus configured by cfg; a nil cfg means no middleware. It
// returns an error, naming each problem, if a middleware is nil.
func New(cfg *Config) (*Bus, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	var errs []error
	for i, m := range cfg.CommandMiddleware {
		if m == nil {
			errs = append(errs, fmt.Errorf("cqrs: Config.CommandMiddleware[%d] is nil", i))
		}
	}
	for i, m := range cfg.QueryMiddleware {
		if m == nil {
			errs = append(errs, fmt.Errorf("cqrs: Config.QueryMiddleware[%d] is nil", i))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	b := &Bus{}
	b.commands.init(KindCommand, cfg.CommandMiddleware)
	b.queries.init(KindQuery, cfg.QueryMiddleware)
	return b, nil
}

// HandleCommand registers h as the handler of commands of type C on b; its
// result type R is what [Send] returns for C. A handler that has nothing to
// return can use struct{} for R and be dispatched with [Exec].
//
// A command's name, used in log lines and errors, is the result of its
// CommandName method if C or *C has
//
//	CommandName() string
//
// and otherwise its Go type name, such as "app.RegisterUser". The method is
// called once, at registration, on a zero value: it must return a constant.
//
// HandleCommand returns an error wrapping [ErrDuplicateHandler] if C already
// has a handler or another command type already uses the same name, and
// one wrapping [ErrResultType] if [Bus.Expect] declared a different result
// type for C. It is meant to be called at start-up, before dispatching.
func HandleCommand[C, R any](b *Bus, h func(ctx context.Context, cmd C) (R, error)) error {
	if b == nil {
		return errNilBus
	}
	return register(b, &b.commands, h)
}

// HandleQuery registers h as the handler of queries of type Q on b; its
// result type R is what [Ask] returns for Q. A query's name comes from its
// QueryName() string method, or else its Go type name, as for
// [HandleCommand]; the errors are those of HandleCommand.
func HandleQuery[Q, R any](b *Bus, h func(ctx context.Context, query Q) (R, error)) error {
	if b == nil {
		return errNilBus
	}
	return register(b, &b.queries, h)
}

// Send dispatches cmd to the handler registered for its type C and returns
// the handler's result, which must be of type R. R is the only type argument
// a caller needs to write:
//
//	id, err := cqrs.Send[UserID](ctx, bus, RegisterUser{Email: "ada@example.com"})
//
// Send returns an error wrapping [ErrNoHandler] if C has no command handler,
// and one wrapping [ErrResultType] if C's handler returns another type than
// R. Otherwise it returns what the handler, seen through the command
// middleware, returns.
func Send[R, C any](ctx context.Context, b *Bus, cmd C) (R, error) {
	if b == nil {
		var zero R
		return zero, errNilBus
	}
	return dispatch[R](ctx, &b.commands, cmd)
}

// Exec dispatches cmd like [Send] but discards the handler's result, whatever
// its type: for commands whose result the caller does not need.
func Exec[C any](ctx context.Context, b *Bus, cmd C) error {
	if b == nil {
		return errNilBus
	}
	t := reflect.TypeFor[C]()
	e, ok := b.commands.lookup(t)
	if !ok {
		return b.commands.noHandler(t, cmd)
	}
	h, ok := e.(executor[C])
	if !ok { // unreachable: every entry for key C is a *handler[C, R]
		return fmt.Errorf("cqrs: internal error: bad handler entry for %s", t)
	}
	return h.exec(ctx, cmd)
}

// Ask dispatches query to the handler registered for its type Q and returns
// the handler's result, which must be of type R:
//
//	user, err := cqrs.Ask[UserView](ctx, bus, GetUser{ID: id})
//
// Its errors are those of [Send], for queries.
func Ask[R, Q any](ctx context.Context, b *Bus, query Q) (R, error) {
	if b == nil {
		var zero R
		return zero, errNilBus
	}
	return dispatch[R](ctx, &b.queries, query)
}

var errNilBus = errors.New("cqrs: nil *Bus")

// registry holds the handlers of one kind. Dispatch reads an immutable map
// through an atomic pointer; registration copies it under mu.
type registry struct {
	kind       Kind
	middleware []Middleware

	mu      sync.Mutex // serialises writers
	entries atomic.Pointer[map[reflect.Type]entry]
	names   map[string]reflect.Type // guarded by mu
}

func (r *registry) init(kind Kind, middleware []Middleware) {
	r.kind = kind
	r.middleware = append([]Middleware(nil), middleware...)
	r.names = make(map[string]reflect.Type)
	m := make(map[reflect.Type]entry)
	r.entries.Store(&m)
}

func (r *registry) lookup(t reflect.Type) (entry, bool) {
	p := r.entries.Load()
	if p == nil { // a zero Bus, not made by New
		return nil, false
	}
	e, ok := (*p)[t]
	return e, ok
}

// noHandler builds the error for a type without a handler. v is the
// dispatched value, or nil when there is none (in Validate).
func (r *registry) noHandler(t reflect.Type, v any) error {
	if r.kind == 0 {
		return fmt.Errorf("cqrs: %w for %s: the Bus was not created with cqrs.New", ErrNoHandler, t)
	}
	label := r.kind.String() + " " + label(nameOf(t, r.kind), t)
	// Point at the likely mistakes: a handler for T dispatched with *T, or
	// the other way round, or a value dispatched as an interface type.
	if t.Kind() == reflect.Interface {
		if dt := reflect.TypeOf(v); dt != nil {
			if _, ok := r.lookup(dt); ok {
				return fmt.Errorf("%w for %s (the value is a %s, which has a handler: dispatch it with its own static type)", ErrNoHandler, label, dt)
			}
		}
		return fmt.Errorf("%w for %s", ErrNoHandler, label)
	}
	var alt reflect.Type
	if t.Kind() == reflect.Pointer {
		alt = t.Elem()
	} else {
		alt = reflect.PointerTo(t)
	}
	if _, ok := r.lookup(alt); ok {
		return fmt.Errorf("%w for %s (a handler is registered for %s)", ErrNoHandler, label, alt)
	}
	return fmt.Errorf("%w for %s", ErrNoHandler, label)
}

// entry is a registered handler; the dynamic type is always *handler[C, R].
type entry interface {
	describe() (name string, result reflect.Type)
}

// executor is implemented by every *handler[C, R]; [Exec] uses it to run a
// handler without knowing R.
type executor[C any] interface {
	exec(ctx context.Context, cmd C) error
}

type handler[C, R any] struct {
	kind  Kind
	name  string
	fn    func(context.Context, C) (R, error)
	chain HandlerFunc // nil when there is no middleware
}

func (h *handler[C, R]) describe() (string, reflect.Type) { return h.name, reflect.TypeFor[R]() }

func (h *handler[C, R]) call(ctx context.Context, msg C) (R, error) {
	if t, ok := telemetry.Active(); ok {
		return h.callTraced(ctx, t, msg)
	}
	return h.callPlain(ctx, msg)
}

func (h *handler[C, R]) callTraced(ctx context.Context, t trace.Tracer, msg C) (_ R, err error) {
	ctx, span := startDispatch(ctx, t, h.kind, h.name)
	defer func() { endDispatch(span, err) }()
	return h.callPlain(ctx, msg)
}

func (h *handler[C, R]) callPlain(ctx context.Context, msg C) (R, error) {
	if h.chain == nil {
		return h.fn(ctx, msg)
	}
	res, err := h.chain(ctx, Message{Kind: h.kind, Name: h.name, Payload: msg})
	if res == nil {
		var zero R
		return zero, err
	}
	r, ok := res.(R)
	if !ok {
		var zero R
		rerr := fmt.Errorf("%w for %s %s: a middleware returned %T, want %s", ErrResultType, h.kind, h.name, res, reflect.TypeFor[R]())
		return zero, errors.Join(rerr, err)
	}
	return r, err
}

func (h *handler[C, R]) exec(ctx context.Context, msg C) error {
	if t, ok := telemetry.Active(); ok {
		_, err := h.callTraced(ctx, t, msg)
		return err
	}
	if h.chain == nil {
		_, err := h.fn(ctx, msg)
		return err
	}
	_, err := h.chain(ctx, Message{Kind: h.kind, Name: h.name, Payload: msg})
	return err
}

// terminal is the innermost HandlerFunc of the chain: it unboxes the
// payload and calls the typed handler.
func (h *handler[C, R]) terminal(ctx context.Context, msg Message) (any, error) {
	c, ok := msg.Payload.(C)
	if !ok {
		return nil, fmt.Errorf("cqrs: %s %s: a middleware passed a payload of type %T, want %s", h.kind, h.name, msg.Payload, reflect.TypeFor[C]())
	}
	r, err := h.fn(ctx, c)
	return r, err
}

func register[C, R any](b *Bus, r *registry, fn func(context.Context, C) (R, error)) error {
	t := reflect.TypeFor[C]()
	if r.kind == 0 {
		return fmt.Errorf("cqrs: cannot register a handler for %s: the Bus was not created with cqrs.New", t)
	}
	name := nameOf(t, r.kind)
	if fn == nil {
		return fmt.Errorf("cqrs: nil handler for %s %s", r.kind, label(name, t))
	}
	result := reflect.TypeFor[R]()
	if err := b.checkExpectedResult(r.kind, t, result); err != nil {
		return err
	}
	h := &handler[C, R]{kind: r.kind, name: name, fn: fn}
	if len(r.middleware) > 0 {
		next := HandlerFunc(h.terminal)
		for i := len(r.middleware) - 1; i >= 0; i-- {
			next = r.middleware[i](next)
			if next == nil {
				return fmt.Errorf("cqrs: %s middleware %d returned a nil HandlerFunc", r.kind, i)
			}
		}
		h.chain = next
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.entries.Load()
	if prev, ok := old[t]; ok {
		_, prevResult := prev.describe()
		return fmt.Errorf("%w for %s %s (already registered, returning %s)", ErrDuplicateHandler, r.kind, label(name, t), prevResult)
	}
	if other, ok := r.names[name]; ok {
		return fmt.Errorf("%w: %s name %q is used by both %s and %s", ErrDuplicateHandler, r.kind, name, other, t)
	}
	m := make(map[reflect.Type]entry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[t] = h
	r.names[name] = t
	r.entries.Store(&m)
	return nil
}

func dispatch[R, C any](ctx context.Context, r *registry, msg C) (R, error) {
	t := reflect.TypeFor[C]()
	e, ok := r.lookup(t)
	if !ok {
		var zero R
		return zero, r.noHandler(t, msg)
	}
	h, ok := e.(*handler[C, R])
	if !ok {
		var zero R
		name, result := e.describe()
		return zero, fmt.Errorf("%w for %s %s: the handler returns %s, the caller asked for %s",
			ErrResultType, r.kind, label(name, t), result, reflect.TypeFor[R]())
	}
	return h.call(ctx, msg)
}
