package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/check"
	"github.com/dddkit/dddkit/internal/telemetry"
	"github.com/dddkit/dddkit/retry"
)

// BatchConfig configures batched handling: a [BatchProcessor] and the
// consumer that feeds it (the BatchConsumer of package
// [github.com/dddkit/dddkit/kafka]). The zero value and nil are the
// defaults.
type BatchConfig struct {
	// MaxBatch is how many messages of one partition share a transaction
	// at most. 0 means 500.
	MaxBatch int

	// MaxWait is how long a batch waits for more messages after its
	// first one before it is processed anyway; it bounds the latency the
	// batching adds when a partition is quiet. 0 means 5ms.
	MaxWait time.Duration

	// Topic is the topic to consume. "" means the topic of the event
	// type's aggregate type (see [RegistryConfig.Topic]).
	Topic string

	// Logger receives the consumer's log lines; nil means
	// slog.Default().
	Logger *slog.Logger

	// Retry bounds the retries of an event that failed, as
	// [RouterConfig.Retry] does for a [Router].
	Retry retry.Policy

	// DeadLetterTopic is where events go that failed after the last
	// retry, cannot be decoded or (with [DeadLetterUnknown]) have an
	// unknown name, with the same headers a [Router] adds. "" means
	// [DefaultDeadLetterTopic]. While a dead letter cannot be published
	// the partition waits and the publish is retried.
	DeadLetterTopic string

	// UnknownEvents is the policy for event names the registry does not
	// know, as [RouterConfig.UnknownEvents]. Events of registered types
	// other than the consumer's are acknowledged quietly (debug log).
	UnknownEvents UnknownPolicy

	// SkipLogLevel is the level of the log line for a skipped unknown
	// event. The zero value is slog.LevelInfo.
	SkipLogLevel slog.Level
}

// Validate reports every problem of c at once.
func (c *BatchConfig) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	e := check.New("eventbus: BatchConfig")
	check.NotNegative(e, "MaxBatch", c.MaxBatch)
	check.NotNegative(e, "MaxWait", c.MaxWait)
	errs = append(errs, e.Err())
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("eventbus: BatchConfig.Retry: %w", err))
	}
	if c.UnknownEvents != SkipUnknown && c.UnknownEvents != DeadLetterUnknown {
		errs = append(errs, fmt.Errorf("eventbus: BatchConfig.UnknownEvents is %s", c.UnknownEvents))
	}
	return errors.Join(errs...)
}

// BatchProcessor applies the events of one type (or of several types of
// one topic, see [AddBatchHandler]) with an [Inbox] in batches: one [Inbox.ProcessBatch] — with the PostgreSQL inbox one
// transaction and one inbox statement — for a whole batch. It gives the
// guarantees of [HandleOnce] — effects once per event, the events of one
// key in order, bounded retries and dead letters, panic recovery — at a
// fraction of the database round trips. See "Batching consumer" in the
// package documentation.
//
// It is the transport-independent half of a batching consumer: the other
// half (the BatchConsumer of package [github.com/dddkit/dddkit/kafka])
// gathers the messages of one partition and hands each batch to
// [BatchProcessor.Process]. Applications use that consumer; a
// BatchProcessor of their own is for other transports.
type BatchProcessor struct {
	reg         *Registry
	inbox       Inbox
	name        string
	topic       string
	types       map[string]batchType // by event name
	cfg         BatchConfig
	logger      *slog.Logger
	retry       message.HandlerMiddleware
	deadLetters message.Publisher
}

// NewBatchProcessor returns a processor that runs fn for every event of
// type E of its topic, as handler name (the consumer group, and the
// handler in the inbox), with inbox making the effects happen once per
// event, and that publishes dead letters through deadLetters. E must be
// registered in reg. A nil cfg means the defaults.
//
// fn's ctx carries the batch's transaction (as with [HandleOnce]): what it
// writes in it commits with the inbox records of the whole batch. fn can
// run more than once for an event (when another event of its batch fails,
// or on a retry); only the effects of the run that committed remain.
func NewBatchProcessor[E aggregate.Event](reg *Registry, inbox Inbox, name string, fn HandlerFunc[E], deadLetters message.Publisher, cfg *BatchConfig) (*BatchProcessor, error) {
	var errs []error
	if reg == nil {
		errs = append(errs, errors.New("eventbus: NewBatchProcessor: nil Registry"))
	}
	if inbox == nil {
		errs = append(errs, errors.New("eventbus: NewBatchProcessor: nil Inbox"))
	}
	if name == "" {
		errs = append(errs, errors.New("eventbus: NewBatchProcessor: empty name"))
	}
	if fn == nil {
		errs = append(errs, errors.New("eventbus: NewBatchProcessor: nil function"))
	}
	if deadLetters == nil {
		errs = append(errs, errors.New("eventbus: NewBatchProcessor: nil dead-letter Publisher"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := BatchConfig{}
	if cfg != nil {
		c = *cfg
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 500
	}
	if c.MaxWait == 0 {
		c.MaxWait = 5 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = DefaultDeadLetterTopic
	}
	c.Retry = c.Retry.WithDefaults(defaultRetry)
	et, err := typeOf[E](reg)
	if err != nil {
		return nil, fmt.Errorf("eventbus: batch processor %q: %w", name, err)
	}
	topic := c.Topic
	if topic == "" {
		if et.aggregateType == "" {
			return nil, fmt.Errorf("eventbus: batch processor %q: event %s has no topic: register it with eventbus.AggregateType(...) or set BatchConfig.Topic", name, et.name)
		}
		topic = reg.Topic(et.aggregateType)
	}
	if c.DeadLetterTopic == topic {
		return nil, fmt.Errorf("eventbus: batch processor %q: dead-letter topic %q is the topic it consumes", name, topic)
	}
	return &BatchProcessor{
		reg:         reg,
		inbox:       inbox,
		name:        name,
		topic:       topic,
		cfg:         c,
		logger:      c.Logger,
		retry:       retryMiddleware(c.Logger, c.Retry, name),
		deadLetters: deadLetters,
		types:       map[string]batchType{et.name: {et, typed(name, et, fn)}},
	}, nil
}

// batchType is one event type a [BatchProcessor] handles.
type batchType struct {
	et    *eventType
	apply handleFunc
}

// AddBatchHandler makes p handle the events of type E too, with fn, in
// the same batches and transactions as its other types and in the order
// they have on p's topic: one consumer for a read model that follows
// several event types of one aggregate type (package projection builds
// its bus consumers this way). E must be registered in p's registry,
// not handled by p yet, and its topic must be p's topic (unless
// [BatchConfig.Topic] set the topic). Call it before the processor runs.
func AddBatchHandler[E aggregate.Event](p *BatchProcessor, fn HandlerFunc[E]) error {
	if p == nil {
		return errors.New("eventbus: AddBatchHandler on a nil BatchProcessor")
	}
	if fn == nil {
		return fmt.Errorf("eventbus: batch processor %q: nil function", p.name)
	}
	et, err := typeOf[E](p.reg)
	if err != nil {
		return fmt.Errorf("eventbus: batch processor %q: %w", p.name, err)
	}
	if _, dup := p.types[et.name]; dup {
		return fmt.Errorf("eventbus: batch processor %q: %s handled twice", p.name, et.name)
	}
	if p.cfg.Topic == "" {
		if et.aggregateType == "" {
			return fmt.Errorf("eventbus: batch processor %q: event %s has no topic: register it with eventbus.AggregateType(...) or set BatchConfig.Topic", p.name, et.name)
		}
		if topic := p.reg.Topic(et.aggregateType); topic != p.topic {
			return fmt.Errorf("eventbus: batch processor %q consumes %q; %s is on %q: one processor consumes one topic", p.name, p.topic, et.name, topic)
		}
	}
	p.types[et.name] = batchType{et, typed(p.name, et, fn)}
	return nil
}

// Name returns the handler name: the consumer group and the handler in
// the inbox.
func (c *BatchProcessor) Name() string { return c.name }

// Topic returns the topic the events come from.
func (c *BatchProcessor) Topic() string { return c.topic }

// Config returns the configuration with its defaults filled in; a
// consumer reads MaxBatch, MaxWait and Logger from it.
func (c *BatchProcessor) Config() BatchConfig { return c.cfg }

// batchItem is one message of a batch, decoded.
type batchItem struct {
	msg *message.Message
	env aggregate.Envelope // env.Payload nil: acknowledge without handling
	err error              // cannot be handled in a batch
}

// Process handles batch, consecutive messages of one partition in their
// order, and calls done(i) when batch[i] and every message before it are
// handled for good (applied, skipped or dead-lettered): their offsets may
// be committed. It reports false when ctx ended first; the messages not
// done are then to be delivered again.
//
// Each run of messages that decoded goes through one
// [Inbox.ProcessBatch]; if that fails, the run is handled again one
// message at a time, as [HandleOnce] would, like a message that did not
// decode.
func (c *BatchProcessor) Process(ctx context.Context, batch []*message.Message, done func(i int)) bool {
	ctx, span := startBatch(ctx, telemetry.System(c.deadLetters), c.name, c.topic, batch)
	defer span.End()
	items := make([]batchItem, len(batch))
	for k, m := range batch {
		items[k] = c.decode(ctx, m)
	}
	for from := 0; from < len(items); {
		to := from
		for to < len(items) && items[to].err == nil {
			to++
		}
		if to > from {
			err := c.applyBatch(ctx, items[from:to])
			if err == nil {
				done(to - 1)
				from = to
				continue
			}
			if ctx.Err() != nil {
				return false
			}
			c.logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: batch failed, handling its events one by one",
				slog.String("handler", c.name), slog.Int("events", to-from), slog.Any("error", err))
		}
		to = max(to, from+1)
		for k := from; k < to; k++ {
			if !c.processOne(ctx, items[k]) {
				return false
			}
			done(k)
		}
		from = to
	}
	return true
}

// decode turns msg into a batch item: the envelope with the decoded
// event for the consumer's event type, without payload for a message to
// acknowledge without handling.
func (c *BatchProcessor) decode(ctx context.Context, msg *message.Message) batchItem {
	msg.SetContext(ctx)
	it := batchItem{msg: msg}
	env, version, err := readEnvelope(msg)
	it.env = env
	if err != nil {
		it.err = err
		return it
	}
	bt, ok := c.types[env.Name]
	if !ok {
		it.err = notHandled(ctx, c.reg, c.logger, c.cfg.UnknownEvents, c.cfg.SkipLogLevel, c.name, c.topic, env)
		return it
	}
	it.env.Payload, it.err = bt.et.decodePayload(env.ID, version, msg.Payload)
	return it
}

// applyBatch runs the handler for the new events of items in one
// [Inbox.ProcessBatch]. Any error leaves nothing behind.
func (c *BatchProcessor) applyBatch(ctx context.Context, items []batchItem) error {
	envs := make([]aggregate.Envelope, 0, len(items))
	for _, it := range items {
		if it.env.Payload != nil {
			envs = append(envs, it.env)
		}
	}
	if len(envs) == 0 {
		return nil
	}
	return c.inbox.ProcessBatch(ctx, c.name, envs, func(ctx context.Context, fresh []aggregate.Envelope) error {
		for _, env := range fresh {
			if err := c.applyRecovered(ctx, env); err != nil {
				return err
			}
		}
		return nil
	})
}

// applyRecovered runs the handler for env, turning a panic into a
// [*PanicError].
func (c *BatchProcessor) applyRecovered(ctx context.Context, env aggregate.Envelope) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: string(debug.Stack())}
		}
	}()
	return c.types[env.Name].apply(aggregate.ContextWithMetadata(ctx, aggregate.CausedBy(env)), env)
}

// processOne handles one message as [HandleOnce] does: its own
// [Inbox.Process], retries, panic recovery, and the dead-letter topic when
// it fails for good. It reports false when ctx ended first.
func (c *BatchProcessor) processOne(ctx context.Context, it batchItem) bool {
	if it.env.Payload == nil && it.err == nil {
		return true // not for this consumer: acknowledged
	}
	handle := c.retry(recoverMiddleware(func(*message.Message) ([]*message.Message, error) {
		if it.err != nil {
			return nil, it.err
		}
		_, err := c.inbox.Process(aggregate.ContextWithMetadata(ctx, aggregate.CausedBy(it.env)), c.name, it.env, func(ctx context.Context) error {
			return c.types[it.env.Name].apply(ctx, it.env)
		})
		return nil, err
	}))
	it.msg.SetContext(ctx)
	_, err := handle(it.msg)
	switch {
	case err == nil:
		return true
	case !deadLetterable(err):
		return false // stopping
	}
	return c.deadLetter(ctx, it.msg, err)
}

// deadLetter publishes msg to the dead-letter topic with the headers a
// [Router] adds, retrying until it succeeds or ctx ends.
func (c *BatchProcessor) deadLetter(ctx context.Context, msg *message.Message, cause error) bool {
	dl := msg.Copy()
	dl.Metadata.Set(HeaderDeadLetterReason, cause.Error())
	dl.Metadata.Set(HeaderDeadLetterTopic, c.topic)
	dl.Metadata.Set(HeaderDeadLetterHandler, c.name)
	attrs := []slog.Attr{
		slog.String("handler", c.name), slog.String("topic", c.topic),
		slog.String("dead_letter_topic", c.cfg.DeadLetterTopic),
		slog.String("event", msg.Metadata.Get(HeaderEventName)),
		slog.String("event_id", msg.Metadata.Get(HeaderEventID)),
	}
	for n := 1; ; n++ {
		err := c.deadLetters.Publish(c.cfg.DeadLetterTopic, dl)
		if err == nil {
			c.logger.LogAttrs(ctx, slog.LevelError, "eventbus: event dead-lettered", append(attrs, slog.Any("error", cause))...)
			return true
		}
		delay := c.cfg.Retry.Delay(n)
		c.logger.LogAttrs(ctx, slog.LevelError, "eventbus: cannot publish dead letter, retrying",
			append(attrs, slog.Duration("delay", delay), slog.Any("error", err))...)
		if retry.Sleep(ctx, delay) != nil {
			return false
		}
	}
}
