package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/retry"
)

// BatchConfig configures a [BatchConsumer]. The zero value and nil are the
// defaults.
type BatchConfig struct {
	// MaxBatch is how many messages of one partition share a transaction
	// at most. 0 means 500. The consumer's channel buffer
	// (sarama.Config.ChannelBufferSize) is raised to MaxBatch if it is
	// smaller, so that the next batch is fetched while one is processed.
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

// BatchConsumer is a Kafka consumer with an [Inbox] that applies a
// partition's events in batches: one PostgreSQL transaction, and one
// inbox statement, for up to [BatchConfig.MaxBatch] events. It gives the
// guarantees of [HandleTx] — effects once per event, the events of one
// key in order, bounded retries and dead letters, panic recovery — at a
// fraction of the database round trips. See "Batching consumer" in the
// package documentation.
//
// Build it with [NewBatchConsumer] and call [BatchConsumer.Run].
type BatchConsumer struct {
	tr      *KafkaTransport
	reg     *Registry
	inbox   *Inbox
	name    string
	topic   string
	et      *eventType
	apply   func(ctx context.Context, tx pgx.Tx, e aggregate.Event, md Metadata) error
	cfg     BatchConfig
	logger  *slog.Logger
	retry   message.HandlerMiddleware
	started atomic.Bool

	unmarshaler kafka.Unmarshaler
}

// NewBatchConsumer returns a batching consumer that runs fn for every
// event of type E on its topic, as consumer group name, with inbox making
// the effects happen once per event. It uses the brokers and
// [KafkaConfig] of tr, and tr's publisher for dead letters. E must be
// registered in reg. A nil cfg means the defaults.
//
// fn gets the batch's transaction: what it writes through tx commits with
// the inbox rows of the whole batch. fn can run more than once for an
// event (when another event of its batch fails, or on a retry); only the
// effects of the run that committed remain.
func NewBatchConsumer[E aggregate.Event](tr *KafkaTransport, reg *Registry, inbox *Inbox, name string, fn TxHandlerFunc[E], cfg *BatchConfig) (*BatchConsumer, error) {
	var errs []error
	if tr == nil {
		errs = append(errs, errors.New("eventbus: NewBatchConsumer: nil KafkaTransport"))
	}
	if reg == nil {
		errs = append(errs, errors.New("eventbus: NewBatchConsumer: nil Registry"))
	}
	if inbox == nil {
		errs = append(errs, errors.New("eventbus: NewBatchConsumer: nil Inbox"))
	}
	if name == "" {
		errs = append(errs, errors.New("eventbus: NewBatchConsumer: empty name"))
	}
	if fn == nil {
		errs = append(errs, errors.New("eventbus: NewBatchConsumer: nil function"))
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
		return nil, fmt.Errorf("eventbus: batch consumer %q: %w", name, err)
	}
	topic := c.Topic
	if topic == "" {
		if et.aggregateType == "" {
			return nil, fmt.Errorf("eventbus: batch consumer %q: event %s has no topic: register it with eventbus.AggregateType(...) or set BatchConfig.Topic", name, et.name)
		}
		topic = reg.Topic(et.aggregateType)
	}
	if c.DeadLetterTopic == topic {
		return nil, fmt.Errorf("eventbus: batch consumer %q: dead-letter topic %q is the topic it consumes", name, topic)
	}
	return &BatchConsumer{
		tr:     tr,
		reg:    reg,
		inbox:  inbox,
		name:   name,
		topic:  topic,
		et:     et,
		cfg:    c,
		logger: c.Logger,
		retry:  retryMiddleware(c.Logger, c.Retry, name),

		unmarshaler: wire.KafkaMarshaler(),
		apply: func(ctx context.Context, tx pgx.Tx, e aggregate.Event, md Metadata) error {
			ev, ok := e.(E)
			if !ok {
				return Permanent(fmt.Errorf("eventbus: batch consumer %q: decoded %T, want %s", name, e, et.goType))
			}
			return fn(ctx, tx, ev, md)
		},
	}, nil
}

// Topic returns the topic the consumer reads.
func (c *BatchConsumer) Topic() string { return c.topic }

// Run joins the consumer group and consumes until ctx ends; then it
// commits the offsets of the events it has handled, leaves the group and
// returns nil. After a rebalance the group is joined again; errors of the
// group (a broker that cannot be reached) are logged and the join is
// tried again a second later. A consumer runs once.
func (c *BatchConsumer) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return fmt.Errorf("eventbus: batch consumer %q: Run called twice", c.name)
	}
	sc, err := c.tr.cfg.saramaConfig()
	if err != nil {
		return err
	}
	// Room for a full batch while the previous one is processed.
	sc.ChannelBufferSize = max(sc.ChannelBufferSize, c.cfg.MaxBatch)
	group, err := sarama.NewConsumerGroup(c.tr.brokers, c.name, sc)
	if err != nil {
		return fmt.Errorf("eventbus: batch consumer %q: %w", c.name, err)
	}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		for err := range group.Errors() {
			c.logger.LogAttrs(ctx, slog.LevelError, "eventbus: kafka consumer group error",
				slog.String("handler", c.name), slog.String("topic", c.topic), slog.Any("error", err))
		}
	}()
	defer func() {
		if err := group.Close(); err != nil {
			c.logger.LogAttrs(ctx, slog.LevelError, "eventbus: close kafka consumer group",
				slog.String("handler", c.name), slog.Any("error", err))
		}
		<-logged
	}()
	for ctx.Err() == nil {
		err := group.Consume(ctx, []string{c.topic}, batchHandler{c})
		switch {
		case ctx.Err() != nil, errors.Is(err, sarama.ErrClosedConsumerGroup):
			return nil
		case err != nil:
			c.logger.LogAttrs(ctx, slog.LevelError, "eventbus: kafka consumer group session failed",
				slog.String("handler", c.name), slog.String("topic", c.topic), slog.Any("error", err))
			_ = retry.Sleep(ctx, time.Second)
		}
	}
	return nil
}

// batchHandler is the sarama.ConsumerGroupHandler of a BatchConsumer.
type batchHandler struct{ c *BatchConsumer }

func (batchHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (batchHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim gathers batches from one partition and processes them one
// after the other until the claim ends.
func (h batchHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	c := h.c
	ctx := sess.Context()
	msgs := claim.Messages()
	batch := make([]*sarama.ConsumerMessage, 0, c.cfg.MaxBatch)
	timer := time.NewTimer(c.cfg.MaxWait)
	defer timer.Stop()
	for {
		batch = batch[:0]
		select {
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			batch = append(batch, m)
		case <-ctx.Done():
			return nil
		}
		timer.Reset(c.cfg.MaxWait)
		open := true
	gather:
		for len(batch) < c.cfg.MaxBatch {
			select {
			case m, ok := <-msgs:
				if !ok {
					open = false
					break gather
				}
				batch = append(batch, m)
			case <-timer.C:
				break gather
			case <-ctx.Done():
				return nil
			}
		}
		if !c.process(ctx, sess, batch) || !open {
			return nil
		}
	}
}

// batchItem is one message of a batch, decoded.
type batchItem struct {
	msg   *message.Message
	md    Metadata
	event aggregate.Event // nil: acknowledge without handling
	err   error           // cannot be handled in a batch
}

// process handles batch and marks its messages consumed. It reports false
// when ctx ended first; the unmarked messages are then delivered again.
//
// Each run of messages that decoded goes through [BatchConsumer.applyBatch]
// (one transaction); if that fails, the run is handled again one message
// at a time by [BatchConsumer.processOne], like a message that did not
// decode.
func (c *BatchConsumer) process(ctx context.Context, sess sarama.ConsumerGroupSession, batch []*sarama.ConsumerMessage) bool {
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
				sess.MarkMessage(batch[to-1], "")
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
			sess.MarkMessage(batch[k], "")
		}
		from = to
	}
	return true
}

// decode turns m into a batch item; the consumer's handlers see the
// watermill message as a [Router] would give it to them.
func (c *BatchConsumer) decode(ctx context.Context, m *sarama.ConsumerMessage) batchItem {
	msg, err := c.unmarshaler.Unmarshal(m)
	if err != nil {
		msg = message.NewMessage(string(m.Key), m.Value)
		return batchItem{msg: msg, err: &DecodeError{Err: err}}
	}
	msg.SetContext(ctx)
	it := batchItem{msg: msg}
	it.md, it.event, it.err = c.decodeMessage(ctx, msg)
	return it
}

// decodeMessage reads msg: its metadata and, for the consumer's event
// type, the event; nil event and nil error for a message to acknowledge
// without handling.
func (c *BatchConsumer) decodeMessage(ctx context.Context, msg *message.Message) (Metadata, aggregate.Event, error) {
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
func (c *BatchConsumer) applyBatch(ctx context.Context, items []batchItem) (err error) {
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
func (c *BatchConsumer) applyRecovered(ctx context.Context, tx pgx.Tx, it batchItem) (err error) {
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
func (c *BatchConsumer) processOne(ctx context.Context, it batchItem) bool {
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
func (c *BatchConsumer) deadLetter(ctx context.Context, msg *message.Message, cause error) bool {
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
		err := c.tr.Publisher().Publish(c.cfg.DeadLetterTopic, dl)
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
