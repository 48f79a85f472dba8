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

	"github.com/dddkit/dddkit/internal/wire"
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

// Delivery is the outcome of one [Client.PublishAsync]: it completes
// when Kafka has acknowledged, or failed for good, every message the
// call handed over. It is safe for concurrent use.
type Delivery struct {
	c     *call
	topic string
	n     int
	mem   *recordMemory // the records' memory, when PublishEvents built them
}

// closedCall is the completed call of a publish without messages.
var closedCall = func() *call {
	c := &call{done: make(chan struct{})}
	close(c.done)
	return c
}()

// Done returns a channel that is closed when every message of the call
// was acknowledged or failed.
func (d *Delivery) Done() <-chan struct{} { return d.c.done }

// Err returns nil until Done is closed. Then it returns nil when Kafka
// acknowledged every message, and otherwise an error that says how many
// failed and wraps the first failure (the other messages may have been
// written).
func (d *Delivery) Err() error {
	select {
	case <-d.c.done:
	default:
		return nil
	}
	d.c.mu.Lock()
	defer d.c.mu.Unlock()
	if d.c.err != nil {
		return fmt.Errorf("kafka: %d of %d messages to %s failed: %w", d.c.failed, d.n, d.topic, d.c.err)
	}
	return nil
}

// Wait returns [Delivery.Err] once Done is closed, or ctx's error
// (wrapped) when ctx ends first; the messages may still be written after
// that.
func (d *Delivery) Wait(ctx context.Context) error {
	select {
	case <-d.c.done:
		return d.Err()
	case <-ctx.Done():
		return fmt.Errorf("kafka: publish %d messages to %s: %w", d.n, d.topic, ctx.Err())
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
	d, err := p.PublishAsync(ctx, topic, msgs...)
	if err != nil {
		return err
	}
	return d.Wait(ctx)
}

// PublishAsync hands msgs to the producer and returns a Delivery for
// their acknowledgements without waiting for them (see
// [Client.PublishAsync]).
func (p *producer) PublishAsync(ctx context.Context, topic string, msgs ...*message.Message) (*Delivery, error) {
	pms := make([]*sarama.ProducerMessage, len(msgs))
	for i, msg := range msgs {
		pm, err := p.marshaler.Marshal(topic, msg)
		if err != nil {
			return nil, fmt.Errorf("kafka: marshal message %s: %w", msg.UUID, err)
		}
		if err := p.checkSize(pm, msg.UUID); err != nil {
			return nil, err
		}
		pms[i] = pm
	}
	return p.send(ctx, topic, pms)
}

// publishEvents is PublishAsync for the messages of wire.ToMessage,
// built as records directly (see [wire.EventPublisher]), in memory of an
// earlier call's: the caller releases the Delivery's once it is done
// (releaseDone).
func (p *producer) publishEvents(ctx context.Context, topic, source string, evs []wire.Event) (*Delivery, error) {
	mem := recordMemories.Get().(*recordMemory)
	pms := eventRecords(topic, source, evs, mem)
	for i, pm := range pms {
		if err := p.checkSize(pm, evs[i].Envelope.ID); err != nil {
			mem.release() // nothing was handed over
			return nil, err
		}
	}
	d, err := p.send(ctx, topic, pms)
	if err != nil {
		// Some records may have been handed over: sarama may hold them
		// still.
		return nil, err
	}
	d.mem = mem
	return d, nil
}

// releaseDone releases the memory of d's records if Kafka has answered
// for all of them: then sarama holds none. A call that stopped waiting
// before leaves it to the garbage collector.
func (d *Delivery) releaseDone() {
	if d.mem == nil {
		return
	}
	select {
	case <-d.c.done:
		d.mem.release()
		d.mem = nil
	default:
	}
}

// checkSize fails a record larger than the producer's MaxMessageBytes.
func (p *producer) checkSize(pm *sarama.ProducerMessage, id string) error {
	if size := pm.ByteSize(2); size > p.maxBytes {
		return fmt.Errorf("kafka: message %s is %d bytes, more than Producer.MaxMessageBytes (%d)", id, size, p.maxBytes)
	}
	return nil
}

// send hands the records pms of topic to the producer.
func (p *producer) send(ctx context.Context, topic string, pms []*sarama.ProducerMessage) (*Delivery, error) {
	if len(pms) == 0 {
		return &Delivery{c: closedCall, topic: topic}, nil
	}
	c := &call{done: make(chan struct{})}
	for _, pm := range pms {
		pm.Metadata = c
	}
	c.remaining.Store(int64(len(pms)))

	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return nil, ErrClosed
	}
	for i, pm := range pms {
		select {
		case p.producer.Input() <- pm:
		case <-ctx.Done():
			return nil, fmt.Errorf("kafka: publish to %s: %d of %d messages handed over: %w", topic, i, len(pms), ctx.Err())
		}
	}
	return &Delivery{c: c, topic: topic, n: len(pms)}, nil
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

var _ wire.EventPublisher = sharedPublisher{}

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

// PublishEvents implements [wire.EventPublisher] for the outbox relay:
// it publishes as PublishContext does, with records built from the events
// directly.
func (s sharedPublisher) PublishEvents(ctx context.Context, topic, source string, evs []wire.Event) error {
	d, err := s.p.publishEvents(ctx, topic, source, evs)
	if err != nil {
		return err
	}
	err = d.Wait(ctx)
	d.releaseDone()
	return err
}

// Close does nothing; [Client.Close] closes the producer.
func (sharedPublisher) Close() error { return nil }
