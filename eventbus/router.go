package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/check"
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

	// DeadLetters stores the dead letters of the router's handlers and
	// the events parked behind them: a message that a handler failed on
	// after the last retry, that cannot be decoded, or (with
	// [DeadLetterUnknown]) that has an unknown event name is recorded
	// there, and the later events of its key for that handler are parked
	// until an operator replays or skips it (see "Dead letters" in the
	// package documentation). nil means a [MemoryDeadLetters] of the
	// router's own, which loses parked events with the process: with
	// Kafka give the PostgreSQL store (postgres.NewDeadLetters). While
	// the store cannot be reached, the partition waits.
	DeadLetters DeadLetters

	// DeadLetterTopic is where a copy of every dead letter is published,
	// for tools and alerts that watch a topic: the message keeps its
	// payload and headers and gets [HeaderDeadLetterReason],
	// [HeaderDeadLetterTopic] and [HeaderDeadLetterHandler]. The record
	// that parks the key and that an operator acts on is the one in
	// DeadLetters. "" means [DefaultDeadLetterTopic]. The topic must
	// exist ([Router.Topics] lists it, for provisioning); while the copy
	// cannot be published, the partition waits.
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

	// Middleware is wrapped around every run of a handler function:
	// inside the retry (so it sees every attempt), inside the inbox's
	// transaction with [HandleOnce] (msg.Context() carries it), outside
	// the panic recovery. In a batch it runs once per event handled; an
	// event whose batch rolled back runs again. First listed is
	// outermost. [HandlerName] of msg.Context() names the handler.
	Middleware []message.HandlerMiddleware

	// MaxBatch is how many messages of one partition a [HandleOnce]
	// handler applies in one [Inbox.ProcessBatch] (with the PostgreSQL
	// inbox, one transaction) at most, when the transport is a
	// [BatchTransport] (Kafka). 0 means 500; 1 applies one event per
	// transaction. See "Batches" in the package documentation.
	MaxBatch int

	// MaxWait is how long a batch waits for more messages after its
	// first one before it is applied anyway. 0, the default, waits not
	// at all: a batch is what has arrived (up to MaxBatch) when its first
	// message is taken, so batching adds no latency to a quiet partition,
	// and under load the messages that arrive while one batch is applied
	// make the next. A wait above zero makes fewer, larger batches of a
	// partition that receives a trickle, at that cost in latency.
	MaxWait time.Duration
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
	check.NotNegative(e, "MaxBatch", c.MaxBatch)
	check.NotNegative(e, "MaxWait", c.MaxWait)
	errs = append(errs, e.Err())
	for i, m := range c.Middleware {
		if m == nil {
			errs = append(errs, fmt.Errorf("eventbus: RouterConfig.Middleware[%d] is nil", i))
		}
	}
	return errors.Join(errs...)
}

// Router consumes events from a [Transport] and hands each to the handlers
// registered with [Handle] and [HandleOnce] (and by packages process and
// projection). Every handler name is a consumer of its own (a Kafka
// consumer group) with retry, dead-lettering, panic recovery and the
// event's metadata in the context. On a [BatchTransport] (Kafka) the
// handlers registered with HandleOnce apply a partition's events in
// batches, one inbox transaction per batch; the others, and every handler
// on another transport, take one message at a time through watermill's
// message.Router.
//
// Register handlers, then call [Router.Run]; stop with [Router.Close] or by
// cancelling Run's context.
type Router struct {
	reg       *Registry
	transport Transport
	cfg       RouterConfig
	logger    *slog.Logger
	wm        *message.Router
	batches   BatchTransport // nil: the transport does not batch

	mu        sync.Mutex
	consumers map[string]*consumer
	started   bool
	closed    bool
	stop      context.CancelFunc // ends the batch consumers
	batchDone chan struct{}      // closed when the batch consumers have returned
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
	if c.MaxBatch == 0 {
		c.MaxBatch = 500
	}
	if c.DeadLetters == nil {
		c.DeadLetters = NewMemoryDeadLetters()
	}
	c.Retry = c.Retry.WithDefaults(defaultRetry)
	wm, err := message.NewRouter(message.RouterConfig{CloseTimeout: c.CloseTimeout}, watermill.NewSlogLogger(c.Logger))
	if err != nil {
		return nil, fmt.Errorf("eventbus: NewRouter: %w", err)
	}
	batches, _ := transport.(BatchTransport)
	return &Router{
		reg:       reg,
		transport: transport,
		batches:   batches,
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.closed {
		cancel()
	}
	r.stop = cancel
	var batched []*consumer
	for _, c := range r.consumers {
		if c.batched {
			batched = append(batched, c)
		}
	}
	r.batchDone = make(chan struct{})
	r.mu.Unlock()

	errs := make([]error, len(batched)+1)
	var wg sync.WaitGroup
	for i, c := range batched {
		wg.Go(func() { errs[i+1] = c.consumeBatches(ctx) })
	}
	go func() {
		wg.Wait()
		close(r.batchDone)
	}()
	// watermill's router ends with ctx only while it has handlers.
	go func() {
		<-ctx.Done()
		_ = r.wm.Close()
	}()
	if err := r.wm.Run(ctx); err != nil {
		errs[0] = fmt.Errorf("eventbus: router: %w", err)
	}
	cancel()
	<-r.batchDone
	return errors.Join(errs...)
}

// consumeBatches runs c on the router's [BatchTransport] until ctx ends.
func (c *consumer) consumeBatches(ctx context.Context) error {
	err := c.r.batches.ConsumeBatches(ctx, BatchSubscription{
		Group:    c.name,
		Topic:    c.topic,
		MaxBatch: c.r.cfg.MaxBatch,
		MaxWait:  c.r.cfg.MaxWait,
		Logger:   c.r.logger,
		Handle:   c.processBatch,
	})
	if err != nil {
		return fmt.Errorf("eventbus: handler %q: %w", c.name, err)
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
// delivered again later; a batch that is being applied is rolled back
// and delivered again. The transport stays open.
func (r *Router) Close() error {
	r.mu.Lock()
	r.closed = true
	stop, batchDone := r.stop, r.batchDone
	r.mu.Unlock()
	if stop != nil {
		stop()
	}
	var errs []error
	if err := r.wm.Close(); err != nil {
		errs = append(errs, fmt.Errorf("eventbus: close router: %w", err))
	}
	if batchDone != nil {
		select {
		case <-batchDone:
		case <-time.After(r.cfg.CloseTimeout):
			errs = append(errs, errors.New("eventbus: close router: batch consumers did not stop within CloseTimeout"))
		}
	}
	return errors.Join(errs...)
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
// Its messages go through processBatch (batched: a consumer with an inbox
// on a [BatchTransport]) or through handle, one at a time, as a
// watermill handler.
type consumer struct {
	r          *Router
	name       string
	topic      string
	deadLetter string
	inbox      Inbox // nil: registered with Handle
	batched    bool
	park       *parking // dead letters and the keys parked behind them
	retry      message.HandlerMiddleware
	entries    map[string]entry // event name → entry; fixed once the router runs
}

// add registers fn for event type et under handler name, with inbox
// making its effects happen once ([HandleOnce]) or without (nil,
// [Handle]).
func (r *Router) add(name string, et *eventType, fn handleFunc, inbox Inbox, opts []HandlerOption) error {
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
		if !sameInbox(c.inbox, inbox) {
			return fmt.Errorf("eventbus: handler %q: every event type of one handler name is registered with HandleOnce and the same Inbox, or with Handle", name)
		}
		if _, dup := c.entries[et.name]; dup {
			return fmt.Errorf("%w: %q already handles %s", ErrDuplicateHandler, name, et.name)
		}
		c.entries[et.name] = entry{et: et, fn: fn}
		return nil
	}
	c := &consumer{
		r:          r,
		name:       name,
		topic:      topic,
		deadLetter: deadLetter,
		inbox:      inbox,
		batched:    inbox != nil && r.batches != nil,
		retry:      retryMiddleware(r.logger, r.cfg.Retry, name),
		entries:    map[string]entry{et.name: {et: et, fn: fn}},
		park: &parking{
			store: r.cfg.DeadLetters, handler: name, topic: topic, dlTopic: deadLetter,
			pub: r.transport.Publisher(), logger: r.logger, wait: r.cfg.Retry,
		},
	}
	if !c.batched {
		sub, err := r.transport.Subscriber(name)
		if err != nil {
			return fmt.Errorf("eventbus: handler %q: subscriber: %w", name, err)
		}
		r.wm.AddConsumerHandler(name, topic, sub, c.handle)
	}
	r.consumers[name] = c
	return nil
}

// sameInbox reports whether a and b are the same inbox (or both nil).
func sameInbox(a, b Inbox) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Type() == vb.Type() && va.Comparable() && va.Equal(vb)
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
