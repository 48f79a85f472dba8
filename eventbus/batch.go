package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
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
	if c.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("eventbus: BatchConfig.MaxBatch is %d, must be >= 0", c.MaxBatch))
	}
	if c.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("eventbus: BatchConfig.MaxWait is %s, must be >= 0", c.MaxWait))
	}
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("eventbus: BatchConfig.Retry: %w", err))
	}
	if c.UnknownEvents != SkipUnknown && c.UnknownEvents != DeadLetterUnknown {
		errs = append(errs, fmt.Errorf("eventbus: BatchConfig.UnknownEvents is %s", c.UnknownEvents))
	}
	return errors.Join(errs...)
}

// BatchProcessor applies the events of one type with an [Inbox] in
// batches: one PostgreSQL transaction, and one inbox statement, for a
// whole batch. It gives the guarantees of [HandleTx] — effects once per
// event, the events of one key in order, bounded retries and dead letters,
// panic recovery — at a fraction of the database round trips. See
// "Batching consumer" in the package documentation.
//
// It is the transport-independent half of a batching consumer: the other
// half (the BatchConsumer of package [github.com/dddkit/dddkit/kafka])
// gathers the messages of one partition and hands each batch to
// [BatchProcessor.Process]. Applications use that consumer; a
// BatchProcessor of their own is for other transports.
type BatchProcessor struct {
	reg         *Registry
	inbox       *Inbox
	name        string
	topic       string
	et          *eventType
	apply       func(ctx context.Context, tx pgx.Tx, e aggregate.Event, md Metadata) error
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
// fn gets the batch's transaction: what it writes through tx commits with
// the inbox rows of the whole batch. fn can run more than once for an
// event (when another event of its batch fails, or on a retry); only the
// effects of the run that committed remain.
func NewBatchProcessor[E aggregate.Event](reg *Registry, inbox *Inbox, name string, fn TxHandlerFunc[E], deadLetters message.Publisher, cfg *BatchConfig) (*BatchProcessor, error) {
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
		et:          et,
		cfg:         c,
		logger:      c.Logger,
		retry:       retryMiddleware(c.Logger, c.Retry, name),
		deadLetters: deadLetters,
		apply: func(ctx context.Context, tx pgx.Tx, e aggregate.Event, md Metadata) error {
			ev, ok := e.(E)
			if !ok {
				return Permanent(fmt.Errorf("eventbus: batch processor %q: decoded %T, want %s", name, e, et.goType))
			}
			return fn(ctx, tx, ev, md)
		},
	}, nil
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
	msg   *message.Message
	md    Metadata
	event aggregate.Event // nil: acknowledge without handling
	err   error           // cannot be handled in a batch
}

// Process handles batch, consecutive messages of one partition in their
// order, and calls done(i) when batch[i] and every message before it are
// handled for good (applied, skipped or dead-lettered): their offsets may
// be committed. It reports false when ctx ended first; the messages not
// done are then to be delivered again.
//
// Each run of messages that decoded goes through one transaction; if
// that fails, the run is handled again one message at a time, as
// [HandleTx] would, like a message that did not decode.
func (c *BatchProcessor) Process(ctx context.Context, batch []*message.Message, done func(i int)) bool {
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

// decode turns msg into a batch item; the handler sees the message as a
// [Router] would give it.
func (c *BatchProcessor) decode(ctx context.Context, msg *message.Message) batchItem {
	msg.SetContext(ctx)
	it := batchItem{msg: msg}
	it.md, it.event, it.err = c.decodeMessage(ctx, msg)
	return it
}

// decodeMessage reads msg: its metadata and, for the consumer's event
// type, the event; nil event and nil error for a message to acknowledge
// without handling.
func (c *BatchProcessor) decodeMessage(ctx context.Context, msg *message.Message) (Metadata, aggregate.Event, error) {
	md, err := readMetadata(msg)
	md.Topic, md.Handler = c.topic, c.name
	if err != nil {
		return md, nil, err
	}
	if md.EventName != c.et.name {
		return md, nil, notHandled(ctx, c.reg, c.logger, c.cfg.UnknownEvents, c.cfg.SkipLogLevel, md)
	}
	e, err := c.et.decodePayload(md, msg.Payload)
	return md, e, err
}

// applyBatch runs the handler for the new events of items in one
// transaction with their inbox rows. Any error leaves nothing behind.
func (c *BatchProcessor) applyBatch(ctx context.Context, items []batchItem) (err error) {
	ids := make([]string, 0, len(items))
	names := make([]string, 0, len(items))
	seen := make(map[string]struct{}, len(items))
	for _, it := range items {
		if it.event == nil {
			continue
		}
		if it.md.EventID == "" {
			return Permanent(fmt.Errorf("eventbus: inbox: event %s without an ID", it.md.EventName))
		}
		if _, dup := seen[it.md.EventID]; !dup {
			seen[it.md.EventID] = struct{}{}
			ids = append(ids, it.md.EventID)
			names = append(names, it.md.EventName)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	tx, err := c.inbox.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("eventbus: inbox: begin: %w: %w", ErrUnavailable, err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	fresh, err := c.inbox.recordBatch(ctx, tx, c.name, ids, names)
	if err != nil {
		return err
	}
	for _, it := range items {
		if it.event == nil {
			continue
		}
		if !fresh[it.md.EventID] {
			c.inbox.logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: duplicate event skipped",
				slog.String("handler", c.name), slog.String("event", it.md.EventName), slog.String("event_id", it.md.EventID))
			continue
		}
		delete(fresh, it.md.EventID) // a second copy in the batch is a duplicate
		if err := c.applyRecovered(ctx, tx, it); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("eventbus: inbox: commit batch of %s: %w", c.name, err)
	}
	return nil
}

// applyRecovered runs the handler for it, turning a panic into a
// [*PanicError].
func (c *BatchProcessor) applyRecovered(ctx context.Context, tx pgx.Tx, it batchItem) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &PanicError{Value: p, Stack: string(debug.Stack())}
		}
	}()
	return c.apply(aggregate.ContextWithMetadata(ctx, it.md.causedMetadata()), tx, it.event, it.md)
}

// processOne handles one message as [HandleTx] does: its own inbox
// transaction, retries, panic recovery, and the dead-letter topic when it
// fails for good. It reports false when ctx ended first.
func (c *BatchProcessor) processOne(ctx context.Context, it batchItem) bool {
	if it.event == nil && it.err == nil {
		return true // not for this consumer: acknowledged
	}
	handle := c.retry(recoverMiddleware(func(*message.Message) ([]*message.Message, error) {
		if it.err != nil {
			return nil, it.err
		}
		_, err := c.inbox.Process(aggregate.ContextWithMetadata(ctx, it.md.causedMetadata()), c.name, it.md, func(ctx context.Context, tx pgx.Tx) error {
			return c.apply(ctx, tx, it.event, it.md)
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
