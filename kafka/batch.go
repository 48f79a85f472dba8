package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/eventbus"
)

var _ eventbus.BatchTransport = (*Client)(nil)

// ConsumeBatches implements [eventbus.BatchTransport]: it joins consumer
// group sub.Group with the client's [Config] and consumes sub.Topic
// below watermill, through sarama's consumer group, gathering up to
// sub.MaxBatch messages of one partition that have arrived (and what
// arrives within sub.MaxWait when it is above zero) and handing them to
// sub.Handle; partitions are handled concurrently. A message's offset is
// marked once it is done and committed every [Config.CommitInterval] and
// when the consumer stops.
// The consumer's channel buffer (sarama.Config.ChannelBufferSize) is
// raised to MaxBatch if it is smaller, so that the next batch is fetched
// while one is handled.
//
// It returns nil once ctx has ended, the offsets of what was handled are
// committed and the group is left. After a rebalance the group is
// joined again; errors of the group (a broker that cannot be reached)
// are logged and the join is tried again a second later. An
// [eventbus.Router] calls it for each handler registered with
// [eventbus.HandleOnce].
func (c *Client) ConsumeBatches(ctx context.Context, sub eventbus.BatchSubscription) error {
	switch {
	case sub.Group == "" || sub.Topic == "":
		return errors.New("kafka: ConsumeBatches: empty consumer group or topic")
	case sub.Handle == nil:
		return errors.New("kafka: ConsumeBatches: nil Handle")
	}
	sub.MaxBatch = max(sub.MaxBatch, 1)
	if sub.Logger == nil {
		sub.Logger = c.cfg.Logger
	}
	name, topic, logger := sub.Group, sub.Topic, sub.Logger
	sc, err := c.cfg.saramaConfig()
	if err != nil {
		return err
	}
	// Room for a full batch while the previous one is handled.
	sc.ChannelBufferSize = max(sc.ChannelBufferSize, sub.MaxBatch)
	group, err := sarama.NewConsumerGroup(c.cfg.Brokers, name, sc)
	if err != nil {
		return fmt.Errorf("kafka: consumer group %q: %w", name, err)
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
	h := batchHandler{sub: sub, unmarshaler: newMarshaler()}
	for ctx.Err() == nil {
		err := group.Consume(ctx, []string{topic}, h)
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

// batchHandler is the sarama.ConsumerGroupHandler of ConsumeBatches.
type batchHandler struct {
	sub         eventbus.BatchSubscription
	unmarshaler wmkafka.Unmarshaler
}

func (batchHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (batchHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// ConsumeClaim gathers batches from one partition and hands them over one
// after the other until the claim ends. A batch is what has arrived when
// its first message is taken, up to MaxBatch; with MaxWait above zero it
// also waits that long for more.
func (h batchHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	msgs := claim.Messages()
	batch := make([]*sarama.ConsumerMessage, 0, h.sub.MaxBatch)
	var timer *time.Timer // fires MaxWait after a batch's first message
	if h.sub.MaxWait > 0 {
		timer = time.NewTimer(h.sub.MaxWait)
		defer timer.Stop()
	}
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
		if timer != nil {
			timer.Reset(h.sub.MaxWait)
		}
		open := true
	gather:
		for len(batch) < h.sub.MaxBatch {
			var m *sarama.ConsumerMessage
			var ok bool
			select {
			case m, ok = <-msgs: // what has arrived
			default:
				if timer == nil {
					break gather
				}
				select {
				case m, ok = <-msgs:
				case <-timer.C:
					break gather
				case <-ctx.Done():
					return nil
				}
			}
			if !ok {
				open = false
				break gather
			}
			batch = append(batch, m)
		}
		recordLag(ctx, h.sub.Group, claim, batch)
		if !h.handle(ctx, sess, batch) || !open {
			return nil
		}
	}
}

// handle hands batch over, marking each message consumed once it is
// done. It reports false when ctx ended first.
func (h batchHandler) handle(ctx context.Context, sess sarama.ConsumerGroupSession, batch []*sarama.ConsumerMessage) bool {
	msgs := make([]*message.Message, len(batch))
	for k, m := range batch {
		msg, err := h.unmarshaler.Unmarshal(m)
		if err != nil {
			// Without its headers the message cannot be decoded: the
			// router dead-letters it.
			msg = message.NewMessage(string(m.Key), m.Value)
		}
		msgs[k] = msg
	}
	return h.sub.Handle(ctx, msgs, func(i int) { sess.MarkMessage(batch[i], "") })
}
