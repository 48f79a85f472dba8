package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
)

// ErrClosed is returned by Publish after [Client.Close].
var ErrClosed = errors.New("kafka: client closed")

// producer is the one producer of a [Client]: a watermill publisher that
// sends all messages of one Publish call together and waits for all their
// acknowledgements, one network round trip per batch instead of one per
// message (which is what watermill-kafka's publisher does).
//
// It is built on sarama's AsyncProducer configured for safety: acks from
// all in-sync replicas, the idempotent producer and one request in flight
// per broker connection, so retries neither duplicate nor reorder the
// messages of one partition. Messages are keyed by aggregate ID
// ([partitionKey]), so the events of one aggregate share a partition. It
// is safe for concurrent use.
type producer struct {
	producer  sarama.AsyncProducer
	marshaler wmkafka.Marshaler
	maxBytes  int

	mu     sync.RWMutex // guards closed against Publish sending on the producer
	closed bool
	drain  sync.WaitGroup
}

// newProducer connects to brokers with sc, which must have
// Producer.Return.Successes and .Errors set.
func newProducer(brokers []string, sc *sarama.Config) (*producer, error) {
	ap, err := sarama.NewAsyncProducer(brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("kafka: create producer: %w", err)
	}
	p := &producer{producer: ap, marshaler: newMarshaler(), maxBytes: sc.Producer.MaxMessageBytes}
	p.drain.Add(2)
	go func() {
		defer p.drain.Done()
		for msg := range ap.Successes() {
			if c, ok := msg.Metadata.(*call); ok {
				c.ack(nil)
			}
		}
	}()
	go func() {
		defer p.drain.Done()
		for perr := range ap.Errors() {
			if c, ok := perr.Msg.Metadata.(*call); ok {
				c.ack(perr.Err)
			}
		}
	}()
	return p, nil
}

// call tracks the acknowledgements of one Publish call.
type call struct {
	remaining atomic.Int64
	done      chan struct{}
	mu        sync.Mutex
	err       error
	failed    int
}

func (c *call) ack(err error) {
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.failed++
		c.mu.Unlock()
	}
	if c.remaining.Add(-1) == 0 {
		close(c.done)
	}
}

// Publish sends msgs to topic and returns when Kafka acknowledged all of
// them, or with an error when any failed (the others may have been
// written). Messages that cannot be marshaled or are larger than the
// producer's MaxMessageBytes fail the whole call before anything is sent.
func (p *producer) Publish(topic string, msgs ...*message.Message) error {
	return p.PublishContext(context.Background(), topic, msgs...)
}

// PublishContext is Publish that stops waiting when ctx is done. Messages
// already handed to the producer may still be written after it returned.
func (p *producer) PublishContext(ctx context.Context, topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	c := &call{done: make(chan struct{})}
	pms := make([]*sarama.ProducerMessage, len(msgs))
	for i, msg := range msgs {
		pm, err := p.marshaler.Marshal(topic, msg)
		if err != nil {
			return fmt.Errorf("kafka: marshal message %s: %w", msg.UUID, err)
		}
		if size := pm.ByteSize(2); size > p.maxBytes {
			return fmt.Errorf("kafka: message %s is %d bytes, more than Producer.MaxMessageBytes (%d)", msg.UUID, size, p.maxBytes)
		}
		pm.Metadata = c
		pms[i] = pm
	}
	c.remaining.Store(int64(len(pms)))

	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	for i, pm := range pms {
		select {
		case p.producer.Input() <- pm:
		case <-ctx.Done():
			p.mu.RUnlock()
			return fmt.Errorf("kafka: publish to %s: %d of %d messages handed over: %w", topic, i, len(msgs), ctx.Err())
		}
	}
	p.mu.RUnlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		return fmt.Errorf("kafka: publish %d messages to %s: %w", len(msgs), topic, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return fmt.Errorf("kafka: %d of %d messages to %s failed: %w", c.failed, len(msgs), topic, c.err)
	}
	return nil
}

// close flushes what is buffered, waits for the outstanding
// acknowledgements and closes the connections. Publish calls after close
// return [ErrClosed].
func (p *producer) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	p.producer.AsyncClose()
	p.drain.Wait()
}

// sharedPublisher is the producer as the [Client] hands it out: Close is
// a no-op, because the client owns the producer and closes it in
// [Client.Close].
type sharedPublisher struct{ p *producer }

// Publish is [producer.Publish].
func (s sharedPublisher) Publish(topic string, msgs ...*message.Message) error {
	return s.p.Publish(topic, msgs...)
}

// PublishContext is [producer.PublishContext].
func (s sharedPublisher) PublishContext(ctx context.Context, topic string, msgs ...*message.Message) error {
	return s.p.PublishContext(ctx, topic, msgs...)
}

// Close does nothing; [Client.Close] closes the producer.
func (sharedPublisher) Close() error { return nil }
