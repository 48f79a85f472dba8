package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// ErrTransportClosed is returned by Publish and Subscribe of a
// [MemoryTransport] after its Close, and by Subscribe of a subscriber
// after the subscriber's Close.
var ErrTransportClosed = errors.New("eventbus: transport closed")

// MemoryConfig configures a [MemoryTransport]. The zero value and nil are
// the defaults.
type MemoryConfig struct {
	// Persistent keeps every published message in memory: a consumer
	// group that subscribes to a topic for the first time starts from the
	// topic's oldest message, the way a new Kafka consumer group reading
	// from the earliest offset does, and a group whose members all left
	// keeps its position and resumes there when a member joins again.
	// Memory grows with every message: for tests and short-lived
	// processes. Off by default: a message published to a topic is
	// delivered to the groups subscribed to it at that moment and to no
	// group that joins later, and a group that loses its last member
	// forgets what it had not yet acknowledged.
	Persistent bool

	// AsyncPublish makes Publish return as soon as the messages are
	// queued. By default Publish waits until every consumer group
	// subscribed to the topic has acknowledged the messages (handled them
	// or dead-lettered them), so that a caller sees the effects of its
	// events when Publish returns. Order does not depend on it: each
	// group receives a topic's messages in the order they were published.
	//
	// The price of waiting: a handler must not publish, synchronously and
	// through the same transport, to a topic that it consumes itself; it
	// would wait for itself.
	AsyncPublish bool

	// Logger receives the transport's debug lines; nil means
	// slog.Default().
	Logger *slog.Logger
}

// MemoryTransport is an in-process [Transport]: for the embedded mode of
// an application and for tests. It keeps Kafka's delivery model with one
// partition per topic:
//
//   - every consumer group (handler name) gets every message of a topic;
//     the members of one group share its messages, each handled by one
//     member;
//   - a group receives a topic's messages in publishing order, one at a
//     time: the next message is delivered only after the previous one was
//     acknowledged; a negative acknowledgement delivers the same message
//     again;
//   - a message delivered but not acknowledged when its subscription ends
//     goes to the group's next member (at-least-once delivery).
//
// Messages do not survive the process; see [MemoryConfig.Persistent] for
// what a group that joins late receives. It passes watermill's universal
// Pub/Sub test suite (pubsub/tests.TestPubSub) as persistent, ordered,
// with consumer groups and at-least-once delivery.
type MemoryTransport struct {
	cfg     MemoryConfig
	logger  *slog.Logger
	closing chan struct{}
	wg      sync.WaitGroup // one per running subscription

	mu     sync.Mutex
	closed bool
	topics map[string]*memoryTopic
}

// memoryTopic is one topic: its log when persistent, and its groups.
type memoryTopic struct {
	log    []*message.Message
	groups map[string]*memoryGroup
}

// memoryGroup is one consumer group of one topic: the messages it has yet
// to acknowledge, in order, of which at most the first is in flight.
type memoryGroup struct {
	queue    []*memoryEntry
	inFlight bool
	members  int
	changed  chan struct{} // closed and replaced on every change
	idle     chan struct{} // closed when the last member leaves
}

// memoryEntry is one message queued for one group; done closes when the
// group acknowledges it.
type memoryEntry struct {
	msg  *message.Message
	done chan struct{}
}

// NewMemoryTransport returns a new in-memory transport. A nil cfg means
// the defaults.
func NewMemoryTransport(cfg *MemoryConfig) *MemoryTransport {
	c := MemoryConfig{}
	if cfg != nil {
		c = *cfg
	}
	logger := c.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &MemoryTransport{
		cfg:     c,
		logger:  logger,
		closing: make(chan struct{}),
		topics:  map[string]*memoryTopic{},
	}
}

// Publisher returns the transport's publisher; publish events with it
// through a [Publisher]. Its Close does nothing: the transport owns it.
func (t *MemoryTransport) Publisher() message.Publisher { return memoryPublisher{t} }

// Subscriber returns a new member of the consumer group named group.
// Closing it ends its subscriptions, not the transport, and returns when
// their channels are closed.
func (t *MemoryTransport) Subscriber(group string) (message.Subscriber, error) {
	if group == "" {
		return nil, errors.New("eventbus: memory transport: empty consumer group")
	}
	return &memorySubscriber{t: t, group: group, stop: make(chan struct{})}, nil
}

// Close ends every subscription, waits until their channels are closed,
// and makes Publish and Subscribe fail with [ErrTransportClosed] from now
// on. Publish calls waiting for an acknowledgement return. Closing twice
// is a no-op.
func (t *MemoryTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.closing)
	t.mu.Unlock()
	t.wg.Wait()
	t.mu.Lock()
	t.topics = nil
	t.mu.Unlock()
	return nil
}

// publish queues msgs for every group of topic (and in the topic's log
// when persistent) and, unless AsyncPublish, waits for the groups that
// have members to acknowledge them.
func (t *MemoryTransport) publish(topic string, msgs ...*message.Message) error {
	type wait struct{ done, idle <-chan struct{} }
	var waits []wait

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return fmt.Errorf("eventbus: memory transport: publish to %q: %w", topic, ErrTransportClosed)
	}
	tp := t.topic(topic)
	copies := make([]*message.Message, len(msgs))
	for i, m := range msgs {
		copies[i] = m.Copy()
	}
	if t.cfg.Persistent {
		tp.log = append(tp.log, copies...)
	}
	if len(tp.groups) == 0 {
		t.logger.Debug("eventbus: memory transport: no consumer group subscribed", slog.String("topic", topic), slog.Int("messages", len(msgs)))
	}
	for _, g := range tp.groups {
		for _, m := range copies {
			e := &memoryEntry{msg: m, done: make(chan struct{})}
			g.queue = append(g.queue, e)
			if !t.cfg.AsyncPublish && g.members > 0 {
				waits = append(waits, wait{e.done, g.idle})
			}
		}
		g.notify()
	}
	t.mu.Unlock()

	for _, w := range waits {
		select {
		case <-w.done:
		case <-w.idle: // the group has no member left to acknowledge
		case <-t.closing:
			return nil
		}
	}
	return nil
}

// topic returns the topic named name, creating it. t.mu is held.
func (t *MemoryTransport) topic(name string) *memoryTopic {
	tp, ok := t.topics[name]
	if !ok {
		tp = &memoryTopic{groups: map[string]*memoryGroup{}}
		t.topics[name] = tp
	}
	return tp
}

// join adds a member to group of topic, creating the group (from the
// topic's log when persistent). t.mu is held.
func (t *MemoryTransport) join(topic, group string) *memoryGroup {
	tp := t.topic(topic)
	g, ok := tp.groups[group]
	if !ok {
		g = &memoryGroup{changed: make(chan struct{})}
		for _, m := range tp.log {
			g.queue = append(g.queue, &memoryEntry{msg: m, done: make(chan struct{})})
		}
		tp.groups[group] = g
	}
	if g.members == 0 {
		g.idle = make(chan struct{})
	}
	g.members++
	return g
}

// leave removes a member from group of topic; without persistence a group
// without members is forgotten.
func (t *MemoryTransport) leave(topic, group string, g *memoryGroup) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g.members--
	if g.members > 0 {
		return
	}
	close(g.idle)
	if t.cfg.Persistent || t.topics == nil {
		return
	}
	if tp := t.topics[topic]; tp != nil && tp.groups[group] == g {
		delete(tp.groups, group)
		if len(tp.groups) == 0 {
			delete(t.topics, topic)
		}
	}
}

// next waits until g's first message is free and takes it, or returns
// false when stop closes.
func (t *MemoryTransport) next(g *memoryGroup, stop <-chan struct{}) (*memoryEntry, bool) {
	for {
		t.mu.Lock()
		if !g.inFlight && len(g.queue) > 0 {
			g.inFlight = true
			e := g.queue[0]
			t.mu.Unlock()
			return e, true
		}
		changed := g.changed
		t.mu.Unlock()
		select {
		case <-changed:
		case <-stop:
			return nil, false
		}
	}
}

// release returns g's message in flight: acknowledged, it leaves the
// queue; otherwise it is delivered again.
func (t *MemoryTransport) release(g *memoryGroup, e *memoryEntry, acked bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	g.inFlight = false
	if acked {
		g.queue[0] = nil
		g.queue = g.queue[1:]
		close(e.done)
	}
	g.notify()
}

// notify wakes whoever waits for a change of g. t.mu is held.
func (g *memoryGroup) notify() {
	close(g.changed)
	g.changed = make(chan struct{})
}

// memoryPublisher publishes on the transport; its Close is a no-op.
type memoryPublisher struct{ t *MemoryTransport }

func (p memoryPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.t.publish(topic, msgs...)
}

func (memoryPublisher) Close() error { return nil }

// memorySubscriber is one member of a consumer group: each Subscribe
// joins the group on that topic.
type memorySubscriber struct {
	t     *MemoryTransport
	group string
	stop  chan struct{}
	wg    sync.WaitGroup

	closed bool // guarded by t.mu
}

// Subscribe joins the subscriber's group on topic and returns the channel
// of its messages. The channel closes when ctx ends, or the subscriber or
// the transport closes.
func (s *memorySubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	t := s.t
	t.mu.Lock()
	if t.closed || s.closed {
		t.mu.Unlock()
		return nil, fmt.Errorf("eventbus: memory transport: subscribe to %q: %w", topic, ErrTransportClosed)
	}
	g := t.join(topic, s.group)
	t.wg.Add(1)
	s.wg.Add(1)
	t.mu.Unlock()

	out := make(chan *message.Message)
	go func() {
		defer t.wg.Done()
		defer s.wg.Done()
		defer close(out)
		defer t.leave(topic, s.group, g)
		s.deliver(ctx, g, out)
	}()
	return out, nil
}

// deliver hands g's messages to out one at a time until the subscription
// ends.
func (s *memorySubscriber) deliver(ctx context.Context, g *memoryGroup, out chan<- *message.Message) {
	t := s.t
	stop := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case <-ctx.Done():
		case <-s.stop:
		case <-t.closing:
		case <-stop:
		}
	}()
	defer func() {
		close(stop)
		<-ended
	}()

	for {
		e, ok := t.next(g, ended)
		if !ok {
			return
		}
		msgCtx, cancel := context.WithCancel(ctx)
		msg := e.msg.Copy()
		msg.SetContext(msgCtx)
		select {
		case out <- msg:
		case <-ended:
			cancel()
			t.release(g, e, false)
			return
		}
		select {
		case <-msg.Acked():
			cancel()
			t.release(g, e, true)
		case <-msg.Nacked():
			cancel()
			t.release(g, e, false)
		case <-ended:
			cancel()
			t.release(g, e, false)
			return
		}
	}
}

// Close ends the subscriber's subscriptions and returns when their
// channels are closed. A message delivered and not acknowledged goes to
// another member of the group.
func (s *memorySubscriber) Close() error {
	s.t.mu.Lock()
	if s.closed {
		s.t.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	close(s.stop)
	s.t.mu.Unlock()
	s.wg.Wait()
	return nil
}
