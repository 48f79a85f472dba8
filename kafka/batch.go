package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

// BatchConsumer is a Kafka consumer with an [eventbus.Inbox] that applies
// a partition's events in batches: one [eventbus.Inbox.ProcessBatch] —
// with the PostgreSQL inbox one transaction and one inbox statement — for
// up to [eventbus.BatchConfig] MaxBatch events. It gives the guarantees
// of [eventbus.HandleOnce] — effects once per event,
// the events of one key in order, bounded retries and dead letters, panic
// recovery — at a fraction of the database round trips. See "Batching
// consumer" in the package documentation.
//
// It consumes below watermill, through sarama's consumer group, and hands
// each batch to an [eventbus.BatchProcessor]. Build it with
// [NewBatchConsumer] and call [BatchConsumer.Run].
type BatchConsumer struct {
	client  *Client
	proc    *eventbus.BatchProcessor
	cfg     eventbus.BatchConfig
	started atomic.Bool

	unmarshaler wmkafka.Unmarshaler
}

// NewBatchConsumer returns a batching consumer that runs fn for every
// event of type E on its topic, as consumer group name, with inbox making
// the effects happen once per event. It uses the [Config] of c, and c's
// producer for dead letters. E must be registered in reg. A nil cfg means
// the defaults (see [eventbus.BatchConfig]); the consumer's channel buffer
// (sarama.Config.ChannelBufferSize) is raised to MaxBatch if it is
// smaller, so that the next batch is fetched while one is processed.
//
// fn's context carries the batch's transaction (with the PostgreSQL
// inbox, a unit of work: postgres.TxFromContext returns it): what fn
// writes in it commits with the inbox rows of the whole batch. fn can run
// more than once for an event (when another event of its batch fails, or
// on a retry); only the effects of the run that committed remain.
func NewBatchConsumer[E aggregate.Event](c *Client, reg *eventbus.Registry, inbox eventbus.Inbox, name string, fn eventbus.HandlerFunc[E], cfg *eventbus.BatchConfig) (*BatchConsumer, error) {
	var errs []error
	var deadLetters message.Publisher
	if c == nil {
		errs = append(errs, errors.New("kafka: NewBatchConsumer: nil Client"))
	} else {
		deadLetters = c.Publisher()
	}
	proc, err := eventbus.NewBatchProcessor(reg, inbox, name, fn, deadLetters, cfg)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &BatchConsumer{client: c, proc: proc, cfg: proc.Config(), unmarshaler: newMarshaler()}, nil
}

// Topic returns the topic the consumer reads.
func (c *BatchConsumer) Topic() string { return c.proc.Topic() }

// Run joins the consumer group and consumes until ctx ends; then it
// commits the offsets of the events it has handled, leaves the group and
// returns nil. After a rebalance the group is joined again; errors of the
// group (a broker that cannot be reached) are logged and the join is
// tried again a second later. A consumer runs once.
func (c *BatchConsumer) Run(ctx context.Context) error {
	name, topic, logger := c.proc.Name(), c.proc.Topic(), c.cfg.Logger
	if !c.started.CompareAndSwap(false, true) {
		return fmt.Errorf("kafka: batch consumer %q: Run called twice", name)
	}
	sc, err := c.client.cfg.saramaConfig()
	if err != nil {
		return err
	}
	// Room for a full batch while the previous one is processed.
	sc.ChannelBufferSize = max(sc.ChannelBufferSize, c.cfg.MaxBatch)
	group, err := sarama.NewConsumerGroup(c.client.cfg.Brokers, name, sc)
	if err != nil {
		return fmt.Errorf("kafka: batch consumer %q: %w", name, err)
	}
	logged := make(chan struct{})
	go func() {
		defer close(logged)
		for err := range group.Errors() {
			logger.LogAttrs(ctx, slog.LevelError, "kafka: consumer group error",
				slog.String("handler", name), slog.String("topic", topic), slog.Any("error", err))
		}
	}()
	defer func() {
		if err := group.Close(); err != nil {
			logger.LogAttrs(ctx, slog.LevelError, "kafka: close consumer group",
				slog.String("handler", name), slog.Any("error", err))
		}
		<-logged
	}()
	for ctx.Err() == nil {
		err := group.Consume(ctx, []string{topic}, batchHandler{c})
		switch {
		case ctx.Err() != nil, errors.Is(err, sarama.ErrClosedConsumerGroup):
			return nil
		case err != nil:
			logger.LogAttrs(ctx, slog.LevelError, "kafka: consumer group session failed",
				slog.String("handler", name), slog.String("topic", topic), slog.Any("error", err))
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
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
		recordLag(ctx, c.proc.Name(), claim, batch)
		if !c.process(ctx, sess, batch) || !open {
			return nil
		}
	}
}

// process hands batch to the processor, marking each message consumed
// once it is done. It reports false when ctx ended first.
func (c *BatchConsumer) process(ctx context.Context, sess sarama.ConsumerGroupSession, batch []*sarama.ConsumerMessage) bool {
	msgs := make([]*message.Message, len(batch))
	for k, m := range batch {
		msg, err := c.unmarshaler.Unmarshal(m)
		if err != nil {
			// Without its headers the message cannot be decoded: the
			// processor dead-letters it.
			msg = message.NewMessage(string(m.Key), m.Value)
		}
		msgs[k] = msg
	}
	return c.proc.Process(ctx, msgs, func(i int) { sess.MarkMessage(batch[i], "") })
}
