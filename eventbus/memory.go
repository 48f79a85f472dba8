package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// MemoryConfig configures a [MemoryTransport]. The zero value and nil are
// the defaults.
type MemoryConfig struct {
	// Persistent keeps every published message in memory and delivers
	// the backlog of a topic to each subscriber that joins later, the way
	// a new Kafka consumer group starting from the oldest offset would.
	// Memory grows with every message: for tests and short-lived
	// processes. Off by default: a message published while a topic has no
	// subscriber is dropped.
	Persistent bool

	// AsyncPublish makes Publish return without waiting for the
	// subscribers. By default Publish waits until every subscriber of the
	// topic has acknowledged the message (handled it or dead-lettered it).
	// Waiting is what keeps the events of one publisher in order: an
	// asynchronous GoChannel hands each message to its subscribers on a
	// goroutine of its own, so two quick publishes may arrive swapped.
	//
	// The price of waiting: a handler must not publish, synchronously and
	// through the same transport, to a topic that it consumes itself; it
	// would wait for itself.
	AsyncPublish bool

	// Logger receives the transport's log lines; nil means
	// slog.Default().
	Logger *slog.Logger
}

// MemoryTransport is an in-process [Transport] on watermill's GoChannel:
// for the embedded mode of an application and for tests. Every consumer
// group gets every message; within a process there is one member per
// group, so a group is simply a subscription. Messages are not persisted
// unless [MemoryConfig.Persistent] says so and do not survive the process.
type MemoryTransport struct {
	ch *gochannel.GoChannel
}

// NewMemoryTransport returns a new in-memory transport. A nil cfg means
// the defaults.
func NewMemoryTransport(cfg *MemoryConfig) *MemoryTransport {
	c := MemoryConfig{}
	if cfg != nil {
		c = *cfg
	}
	ch := gochannel.NewGoChannel(gochannel.Config{
		Persistent:                     c.Persistent,
		BlockPublishUntilSubscriberAck: !c.AsyncPublish,
	}, watermill.NewSlogLogger(c.Logger))
	return &MemoryTransport{ch: ch}
}

// Publisher returns the transport's publisher; publish events with it
// through a [Publisher].
func (t *MemoryTransport) Publisher() message.Publisher { return sharedPublisher{t.ch} }

// Subscriber returns a new subscription handle. Closing it ends its
// subscriptions, not the transport.
func (t *MemoryTransport) Subscriber(group string) (message.Subscriber, error) {
	if group == "" {
		return nil, errors.New("eventbus: memory transport: empty consumer group")
	}
	return &memorySubscriber{ch: t.ch, stop: make(chan struct{})}, nil
}

// Close closes the underlying GoChannel: subscriptions end, publishing
// fails from now on.
func (t *MemoryTransport) Close() error {
	if err := t.ch.Close(); err != nil {
		return fmt.Errorf("eventbus: close memory transport: %w", err)
	}
	return nil
}

// memorySubscriber subscribes on the shared GoChannel; its Close cancels
// its own subscriptions only.
type memorySubscriber struct {
	ch        *gochannel.GoChannel
	stop      chan struct{}
	closeOnce sync.Once
}

func (s *memorySubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	out, err := s.ch.Subscribe(ctx, topic)
	if err != nil {
		cancel()
		return nil, err
	}
	go func() {
		defer cancel()
		select {
		case <-ctx.Done():
		case <-s.stop:
		}
	}()
	return out, nil
}

func (s *memorySubscriber) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	return nil
}

// sharedPublisher hides Close of a publisher owned by someone else.
type sharedPublisher struct{ message.Publisher }

func (sharedPublisher) Close() error { return nil }
