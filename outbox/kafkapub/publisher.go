// Package kafkapub is a watermill [message.Publisher] for Kafka that sends
// all messages of one Publish call together and waits for all their
// acknowledgements: one network round trip per batch instead of one per
// message, which is what watermill-kafka's publisher does.
//
// It is built on sarama's AsyncProducer configured for safety: acks from
// all in-sync replicas (WaitForAll), the idempotent producer and one
// request in flight per broker connection, so retries neither duplicate
// nor reorder messages of one partition. Messages are built by a
// watermill-kafka [kafka.Marshaler]; the default keys them by aggregate ID
// (internal/wire), so the events of one aggregate share a partition.
//
// The outbox relay ([github.com/dddkit/dddkit/outbox.Relay]) is its main
// user:
//
//	pub, err := kafkapub.NewPublisher(&kafkapub.Config{Brokers: brokers})
//	relay, err := outbox.NewRelay(pool, pub, nil)
package kafkapub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/internal/wire"
)

// DefaultVersion is the Kafka protocol version used when Config.Version is
// zero. Kafka 4 brokers refuse the old versions sarama defaults to.
var DefaultVersion = sarama.V3_6_0_0

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("kafkapub: publisher closed")

// Config configures a [Publisher]. Only Brokers is required.
type Config struct {
	// Brokers are the bootstrap brokers, host:port.
	Brokers []string
	// Version is the Kafka protocol version to speak. Zero means
	// [DefaultVersion], or the version of Sarama when that is newer. It
	// must be at least 0.11 (idempotent producer).
	Version sarama.KafkaVersion
	// Marshaler turns a watermill message into a sarama message; nil
	// means watermill-kafka's marshaler keyed by the "aggregate_id"
	// header. A replacement must key messages by aggregate too, or the
	// events of one aggregate may be spread over partitions and lose
	// their order.
	Marshaler kafka.Marshaler
	// ClientID names the producer to the brokers; default "dddkit".
	ClientID string
	// Sarama, when set, is the base sarama configuration (it is copied,
	// not changed): compression, timeouts, TLS, SASL and so on. The
	// publisher always overrides Version (when set above), acks
	// (WaitForAll), Idempotent (true), Net.MaxOpenRequests (1) and
	// Return.Successes/Errors (true), and sets Producer.Retry.Max to 10
	// when it is below 1.
	Sarama *sarama.Config
}

// Validate reports every problem with c, joined.
func (c *Config) Validate() error {
	if c == nil {
		return errors.New("kafkapub: nil Config")
	}
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafkapub: Config.Brokers is empty"))
	}
	if c.Version != (sarama.KafkaVersion{}) && !c.Version.IsAtLeast(sarama.V0_11_0_0) {
		errs = append(errs, fmt.Errorf("kafkapub: Config.Version %s is below 0.11, which the idempotent producer needs", c.Version))
	}
	return errors.Join(errs...)
}

// SaramaConfig returns the sarama configuration the publisher would use.
func (c *Config) SaramaConfig() (*sarama.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var sc *sarama.Config
	if c.Sarama != nil {
		cp := *c.Sarama
		sc = &cp
	} else {
		sc = sarama.NewConfig()
		sc.Producer.Retry.Max = 10
		sc.Producer.Retry.Backoff = 250 * time.Millisecond
		sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	}
	switch {
	case c.Version != (sarama.KafkaVersion{}):
		sc.Version = c.Version
	case !sc.Version.IsAtLeast(DefaultVersion):
		sc.Version = DefaultVersion
	}
	if c.ClientID != "" {
		sc.ClientID = c.ClientID
	} else if c.Sarama == nil || sc.ClientID == "sarama" || sc.ClientID == "" {
		sc.ClientID = "dddkit"
	}
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	if sc.Producer.Retry.Max < 1 {
		sc.Producer.Retry.Max = 10
	}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("kafkapub: sarama config: %w", err)
	}
	return sc, nil
}

// Publisher is a batching watermill publisher for Kafka. It is safe for
// concurrent use.
type Publisher struct {
	producer  sarama.AsyncProducer
	marshaler kafka.Marshaler
	maxBytes  int

	mu     sync.RWMutex // guards closed against Publish sending on the producer
	closed bool
	drain  sync.WaitGroup
}

// NewPublisher connects to the brokers and returns a publisher.
func NewPublisher(cfg *Config) (*Publisher, error) {
	sc, err := cfg.SaramaConfig()
	if err != nil {
		return nil, err
	}
	producer, err := sarama.NewAsyncProducer(cfg.Brokers, sc)
	if err != nil {
		return nil, fmt.Errorf("kafkapub: create producer: %w", err)
	}
	m := cfg.Marshaler
	if m == nil {
		m = wire.KafkaMarshaler()
	}
	p := &Publisher{producer: producer, marshaler: m, maxBytes: sc.Producer.MaxMessageBytes}
	p.drain.Add(2)
	go func() {
		defer p.drain.Done()
		for msg := range producer.Successes() {
			if c, ok := msg.Metadata.(*call); ok {
				c.ack(nil)
			}
		}
	}()
	go func() {
		defer p.drain.Done()
		for perr := range producer.Errors() {
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
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	return p.PublishContext(context.Background(), topic, msgs...)
}

// PublishContext is Publish that stops waiting when ctx is done. Messages
// already handed to the producer may still be written after it returned.
func (p *Publisher) PublishContext(ctx context.Context, topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	c := &call{done: make(chan struct{})}
	pms := make([]*sarama.ProducerMessage, len(msgs))
	for i, msg := range msgs {
		pm, err := p.marshaler.Marshal(topic, msg)
		if err != nil {
			return fmt.Errorf("kafkapub: marshal message %s: %w", msg.UUID, err)
		}
		if size := pm.ByteSize(2); size > p.maxBytes {
			return fmt.Errorf("kafkapub: message %s is %d bytes, more than Producer.MaxMessageBytes (%d)", msg.UUID, size, p.maxBytes)
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
			return fmt.Errorf("kafkapub: publish to %s: %d of %d messages handed over: %w", topic, i, len(msgs), ctx.Err())
		}
	}
	p.mu.RUnlock()

	select {
	case <-c.done:
	case <-ctx.Done():
		return fmt.Errorf("kafkapub: publish %d messages to %s: %w", len(msgs), topic, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return fmt.Errorf("kafkapub: %d of %d messages to %s failed: %w", c.failed, len(msgs), topic, c.err)
	}
	return nil
}

// Close flushes what is buffered, waits for the outstanding
// acknowledgements and closes the connections. Publish calls after Close
// return [ErrClosed].
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	p.producer.AsyncClose()
	p.drain.Wait()
	return nil
}
