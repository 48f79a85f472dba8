package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/eventbus"
)

// Client is a process's connection to Kafka. It owns the one producer of
// the process, shared by everything that publishes: the outbox relay, an
// [eventbus.Publisher] and the dead letters of every consumer. It makes
// the consumers of an [eventbus.Router], all from the same [Config]: a
// Client is an [eventbus.Transport] (watermill subscribers) and an
// [eventbus.BatchTransport] (batches of a partition, for the handlers
// with an inbox).
//
// A Client is safe for concurrent use. Close it when everything that
// publishes through it has stopped.
type Client struct {
	cfg Config
	pub *producer
}

var _ eventbus.Transport = (*Client)(nil)

// NewClient connects the producer to the brokers of cfg and returns the
// client. cfg must name the brokers; every other field has a default.
func NewClient(cfg *Config) (*Client, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	sc, err := c.saramaConfig()
	if err != nil {
		return nil, err
	}
	pub, err := newProducer(c.Brokers, sc)
	if err != nil {
		return nil, err
	}
	return &Client{cfg: c, pub: pub}, nil
}

// Publisher returns the client's producer as a watermill publisher: for
// [github.com/dddkit/dddkit/outbox.NewRelay], [eventbus.NewPublisher] and,
// through the [eventbus.Transport] interface, a Router's dead letters.
// Every call returns the same producer.
//
// Publish sends all messages of one call together and returns when Kafka
// has acknowledged all of them (acks from all in-sync replicas,
// idempotent: retries neither duplicate nor reorder), or with an error
// when any failed. A message is keyed by its aggregate ID, so the events
// of one aggregate share a partition and keep their order. The publisher
// also has PublishContext(ctx, topic, msgs...), which stops waiting when
// ctx ends; [Client.PublishAsync] does not wait at all. The outbox relay,
// given this publisher, builds each event's record straight from the
// event instead of from a watermill message (the same record, with
// fewer allocations), and publishes from several goroutines at once. Its
// Close does nothing: the client owns the producer and [Client.Close]
// closes it.
func (c *Client) Publisher() message.Publisher { return sharedPublisher{c.pub} }

// PublishAsync hands msgs to the client's producer, the one behind
// [Client.Publisher], and returns as soon as they are handed over,
// without waiting for Kafka: the [Delivery] completes when Kafka has
// acknowledged every message (acks from all in-sync replicas) or failed
// one for good. It blocks only while the producer's buffers are full, or
// until ctx ends (then some messages may have been handed over and be
// written, and it returns ctx's error). Messages that cannot be marshaled
// or are too large fail the call before any is handed over; after
// [Client.Close] it returns [ErrClosed].
//
// It lets a caller keep many publishes in flight on the one producer, as
// the outbox relay does with its batches: Publish is PublishAsync
// followed by [Delivery.Wait]. Messages are keyed by aggregate ID, and
// the idempotent producer with one request in flight per broker
// connection writes the messages of one key in the order they were
// handed over, across calls, retries included. A failure is the
// exception: the producer may give up on one message and still write
// later messages of the same key (it goes on with a partition's next
// message). A caller that must never let a later message of a key be
// written after an earlier one failed hands the later one over only once
// the Delivery of the earlier one completed without error.
func (c *Client) PublishAsync(ctx context.Context, topic string, msgs ...*message.Message) (*Delivery, error) {
	return c.pub.PublishAsync(ctx, topic, msgs...)
}

// Subscriber returns a new watermill-kafka subscriber that consumes as
// consumer group group, with the client's configuration. Offsets are
// committed only for messages a handler has acknowledged. The caller
// closes it (a Router closes the subscribers it asked for).
//
// The subscriber is a watermill message.SubscribeInitializer: its
// SubscribeInitialize(topic) provisions topic with the client's topic
// defaults ([Client.Provision] of TopicSpec{Name: topic}).
func (c *Client) Subscriber(group string) (message.Subscriber, error) {
	if group == "" {
		return nil, errors.New("kafka: subscriber: empty consumer group")
	}
	sc, err := c.cfg.saramaConfig()
	if err != nil {
		return nil, err
	}
	sub, err := wmkafka.NewSubscriber(wmkafka.SubscriberConfig{
		Brokers:               c.cfg.Brokers,
		Unmarshaler:           newMarshaler(),
		OverwriteSaramaConfig: sc,
		ConsumerGroup:         group,
		NackResendSleep:       c.cfg.NackResendSleep,
		ReconnectRetrySleep:   time.Second,
	}, watermill.NewSlogLogger(c.cfg.Logger))
	if err != nil {
		return nil, fmt.Errorf("kafka: subscriber %q: %w", group, err)
	}
	return subscriber{Subscriber: sub, client: c}, nil
}

// subscriber is watermill-kafka's subscriber whose SubscribeInitialize
// provisions the topic with the client's defaults (watermill-kafka's
// own needs a TopicDetail in its configuration and fails without one).
type subscriber struct {
	*wmkafka.Subscriber
	client *Client
}

var _ message.SubscribeInitializer = subscriber{}

// SubscribeInitialize provisions topic with the client's topic defaults
// ([Client.Provision]).
func (s subscriber) SubscribeInitialize(topic string) error {
	return s.client.Provision(context.Background(), TopicSpec{Name: topic})
}

// Close flushes what the producer holds, waits for its outstanding
// acknowledgements and closes it; Publish fails with [ErrClosed]
// afterwards. Subscribers and batch consumers are closed by whoever runs
// them. Close is idempotent.
func (c *Client) Close() error {
	c.pub.close()
	return nil
}
