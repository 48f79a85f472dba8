package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/check"
	"github.com/dddkit/dddkit/internal/telemetry"
	"github.com/dddkit/dddkit/retry"
)

// DefaultDeadLetterTopic is where a [Router] sends messages it gives up on,
// unless [RouterConfig.DeadLetterTopic] or the [DeadLetterTopic] handler
// option say otherwise.
const DefaultDeadLetterTopic = "dddkit.dead_letters"

// UnknownPolicy says what a [Router] does with a message whose event name
// the [Registry] does not know.
type UnknownPolicy int

const (
	// SkipUnknown acknowledges the message and writes one log line (at
	// [RouterConfig.SkipLogLevel]). The default: a topic usually carries
	// more event types than one service cares about.
	SkipUnknown UnknownPolicy = iota
	// DeadLetterUnknown sends the message to the dead-letter topic, for
	// services that must not miss an event they cannot read.
	DeadLetterUnknown
)

func (p UnknownPolicy) String() string {
	switch p {
	case SkipUnknown:
		return "skip"
	case DeadLetterUnknown:
		return "dead-letter"
	}
	return fmt.Sprintf("UnknownPolicy(%d)", int(p))
}

// defaultRetry fills in the zero fields of [RouterConfig.Retry]: 5
// attempts, waits of about 100ms, 200ms, 400ms and 800ms, capped at 10s.
var defaultRetry = retry.Policy{MaxAttempts: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second}

// RouterConfig configures a [Router]. The zero value and nil are the
// defaults.
type RouterConfig struct {
	// Logger receives the router's log lines (retries, dead letters,
	// skipped events) and watermill's. nil means slog.Default().
	Logger *slog.Logger

	// Retry bounds how a failing handler is retried: at most MaxAttempts
	// runs for one delivery, the first included, with exponentially
	// growing, jittered waits in between (see [retry.Policy]); then the
	// message is dead-lettered. Errors marked [Permanent] and decode
	// errors are not retried; errors wrapping [ErrUnavailable] are retried
	// until they go away, waiting up to MaxDelay between attempts, and do
	// not count. Zero fields mean 5 attempts, a BaseDelay of 100ms (waits
	// of about 100ms, 200ms, 400ms and 800ms) and a MaxDelay of 10s.
	//
	// While a message is retried, the messages behind it on its partition
	// wait: more attempts and longer delays ride out longer hiccups of a
	// dependency but hold a poison message longer.
	Retry retry.Policy

	// DeadLetterTopic is where messages go that a handler failed on
	// after the last retry, that cannot be decoded, or (with
	// [DeadLetterUnknown]) that have an unknown event name. The message
	// keeps its payload and headers and gets [HeaderDeadLetterReason],
	// [HeaderDeadLetterTopic] and [HeaderDeadLetterHandler]. "" means
	// [DefaultDeadLetterTopic]. The topic must exist ([Router.Topics]
	// lists it, for provisioning); while a dead letter cannot be
	// published, the message is delivered again and its partition waits.
	DeadLetterTopic string

	// UnknownEvents is the policy for event names the registry does not
	// know. Names the registry knows but a handler does not handle are
	// always acknowledged quietly (debug log).
	UnknownEvents UnknownPolicy

	// SkipLogLevel is the level of the log line for a skipped unknown
	// event. The zero value is slog.LevelInfo.
	SkipLogLevel slog.Level

	// CloseTimeout is how long [Router.Close] waits for running handlers.
	// 0 means 30s.
	CloseTimeout time.Duration

	// Middleware is wrapped around every handler, inside the retry (so it
	// sees every attempt) and outside the panic recovery. First listed is
	// outermost.
	Middleware []message.HandlerMiddleware
}

// Validate reports every problem of c at once.
func (c *RouterConfig) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("eventbus: RouterConfig.Retry: %w", err))
	}
	if c.UnknownEvents != SkipUnknown && c.UnknownEvents != DeadLetterUnknown {
		errs = append(errs, fmt.Errorf("eventbus: RouterConfig.UnknownEvents is %s", c.UnknownEvents))
	}
	e := check.New("eventbus: RouterConfig")
	check.NotNegative(e, "CloseTimeout", c.CloseTimeout)
	errs = append(errs, e.Err())
	for i, m := range c.Middleware {
		if m == nil {
			errs = append(errs, fmt.Errorf("eventbus: RouterConfig.Middleware[%d] is nil", i))
		}
	}
	return errors.Join(errs...)
}

// Router consumes events from a [Transport] and hands each to the handlers
// registered with [Handle] and [HandleOnce] (and by package process). It is built on
// watermill's message.Router; every handler name is a consumer of its own
// (a Kafka consumer group) with retry, dead-lettering, panic recovery and
// the event's metadata in the context.
//
// Register handlers, then call [Router.Run]; stop with [Router.Close] or by
// cancelling Run's context.
type Router struct {
	reg       *Registry
	transport Transport
	cfg       RouterConfig
	logger    *slog.Logger
	wm        *message.Router

	mu        sync.Mutex
	consumers map[string]*consumer
	started   bool
}

// NewRouter returns a router that consumes from transport and decodes with
// reg. A nil cfg means the defaults.
func NewRouter(transport Transport, reg *Registry, cfg *RouterConfig) (*Router, error) {
	var errs []error
	if transport == nil {
		errs = append(errs, errors.New("eventbus: NewRouter: nil Transport"))
	}
	if reg == nil {
		errs = append(errs, errors.New("eventbus: NewRouter: nil Registry"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := RouterConfig{}
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = DefaultDeadLetterTopic
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 30 * time.Second
	}
	c.Retry = c.Retry.WithDefaults(defaultRetry)
	wm, err := message.NewRouter(message.RouterConfig{CloseTimeout: c.CloseTimeout}, watermill.NewSlogLogger(c.Logger))
	if err != nil {
		return nil, fmt.Errorf("eventbus: NewRouter: %w", err)
	}
	return &Router{
		reg:       reg,
		transport: transport,
		cfg:       c,
		logger:    c.Logger,
		wm:        wm,
		consumers: make(map[string]*consumer),
	}, nil
}

// Run subscribes every handler and consumes until ctx ends or
// [Router.Close] is called; it returns once the handlers have stopped. A
// router runs once.
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return ErrRouterRunning
	}
	r.started = true
	r.mu.Unlock()
	if err := r.wm.Run(ctx); err != nil {
		return fmt.Errorf("eventbus: router: %w", err)
	}
	return nil
}

// Registry returns the registry the router decodes with.
func (r *Router) Registry() *Registry { return r.reg }

// Running is closed once [Router.Run] has subscribed every handler.
// (Kafka partitions are assigned to the consumer groups shortly after.)
func (r *Router) Running() <-chan struct{} { return r.wm.Running() }

// Close stops consuming and waits, up to [RouterConfig.CloseTimeout], for
// the handlers that are running. Messages not acknowledged by then are
// delivered again later. The transport stays open.
func (r *Router) Close() error {
	if err := r.wm.Close(); err != nil {
		return fmt.Errorf("eventbus: close router: %w", err)
	}
	return nil
}

// HandlerOption configures one handler; see [Handle].
type HandlerOption func(*handlerOptions)

type handlerOptions struct {
	topic      string
	deadLetter string
}

// FromTopic makes the handler consume topic instead of the topic of its
// event type's aggregate.
func FromTopic(topic string) HandlerOption {
	return func(o *handlerOptions) { o.topic = topic }
}

// DeadLetterTopic makes the handler dead-letter to topic instead of
// [RouterConfig.DeadLetterTopic].
func DeadLetterTopic(topic string) HandlerOption {
	return func(o *handlerOptions) { o.deadLetter = topic }
}

// handleFunc is the untyped form of a handler for one event type: env
// carries the decoded event as its payload.
type handleFunc func(ctx context.Context, env aggregate.Envelope) error

// entry is one event type of a consumer.
type entry struct {
	et *eventType
	fn handleFunc
}

// consumer is everything registered under one handler name: one
// subscription (consumer group) on one topic, dispatching by event name.
type consumer struct {
	r          *Router
	name       string
	topic      string
	deadLetter string
	entries    map[string]entry // event name → entry; fixed once the router runs
}

// add registers fn for event type et under handler name.
func (r *Router) add(name string, et *eventType, fn handleFunc, opts []HandlerOption) error {
	if name == "" {
		return errors.New("eventbus: empty handler name")
	}
	o := handlerOptions{}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	topic := o.topic
	if topic == "" {
		if et.aggregateType == "" {
			return fmt.Errorf("eventbus: handler %q: event %s has no topic: register it with eventbus.AggregateType(...) or pass eventbus.FromTopic(...)", name, et.name)
		}
		topic = r.reg.Topic(et.aggregateType)
	}
	deadLetter := o.deadLetter
	if deadLetter == "" {
		deadLetter = r.cfg.DeadLetterTopic
	}
	if deadLetter == topic {
		return fmt.Errorf("eventbus: handler %q: dead-letter topic %q is the topic it consumes", name, topic)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return fmt.Errorf("%w: cannot add handler %q", ErrRouterRunning, name)
	}
	if c, ok := r.consumers[name]; ok {
		switch {
		case c.topic != topic:
			return fmt.Errorf("eventbus: handler %q consumes %q; %s is on %q: one handler name is one consumer of one topic", name, c.topic, et.name, topic)
		case c.deadLetter != deadLetter:
			return fmt.Errorf("eventbus: handler %q dead-letters to %q, not %q", name, c.deadLetter, deadLetter)
		}
		if _, dup := c.entries[et.name]; dup {
			return fmt.Errorf("%w: %q already handles %s", ErrDuplicateHandler, name, et.name)
		}
		c.entries[et.name] = entry{et: et, fn: fn}
		return nil
	}
	sub, err := r.transport.Subscriber(name)
	if err != nil {
		return fmt.Errorf("eventbus: handler %q: subscriber: %w", name, err)
	}
	c := &consumer{
		r:          r,
		name:       name,
		topic:      topic,
		deadLetter: deadLetter,
		entries:    map[string]entry{et.name: {et: et, fn: fn}},
	}
	dlq, err := r.deadLetterMiddleware(name, deadLetter)
	if err != nil {
		_ = sub.Close()
		return err
	}
	h := r.wm.AddConsumerHandler(name, topic, sub, c.handle)
	h.AddMiddleware(dlq, r.retryMiddleware(name))
	h.AddMiddleware(r.cfg.Middleware...)
	h.AddMiddleware(recoverMiddleware)
	r.consumers[name] = c
	return nil
}

// handle is the innermost watermill handler: decode, dispatch by name.
func (c *consumer) handle(msg *message.Message) (err error) {
	env, version, err := readEnvelope(msg)
	if err != nil {
		return err
	}
	ctx, span := startProcess(msg.Context(), telemetry.System(c.r.transport), c.name, c.topic, env)
	defer func() { telemetry.End(span, err) }()
	en, ok := c.entries[env.Name]
	if !ok {
		return notHandled(ctx, c.r.reg, c.r.logger, c.r.cfg.UnknownEvents, c.r.cfg.SkipLogLevel, c.name, c.topic, env)
	}
	env.Payload, err = en.et.decodePayload(env.ID, version, msg.Payload)
	if err != nil {
		return err
	}
	return en.fn(aggregate.ContextWithMetadata(ctx, aggregate.CausedBy(env)), env)
}

// notHandled applies policy to the event env that consumer handler of
// topic has no handler for: nil to acknowledge it, or a permanent error
// to dead-letter it.
func notHandled(ctx context.Context, reg *Registry, logger *slog.Logger, policy UnknownPolicy, skipLevel slog.Level, handler, topic string, env aggregate.Envelope) error {
	attrs := []slog.Attr{
		slog.String("handler", handler), slog.String("topic", topic),
		slog.String("event", env.Name), slog.String("event_id", env.ID),
	}
	if _, known := reg.lookupName(env.Name); known {
		logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: event not handled here, acknowledged", attrs...)
		return nil
	}
	if policy == DeadLetterUnknown {
		return Permanent(fmt.Errorf("%w %q (id %q)", ErrUnknownEvent, env.Name, env.ID))
	}
	logger.LogAttrs(ctx, skipLevel, "eventbus: unknown event skipped", attrs...)
	return nil
}
