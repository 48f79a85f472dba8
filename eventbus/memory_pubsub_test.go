package eventbus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/eventbus"
)

// memoryFeatures is what MemoryTransport claims in watermill's suite:
// consumer groups (a group's members share its messages, every group gets
// every message), one topic's messages in order with the next held back
// until the previous is acknowledged, persistence within the transport,
// and at-least-once delivery (a message in flight when its subscription
// ends is delivered again).
var memoryFeatures = tests.Features{
	ConsumerGroups:      true,
	ExactlyOnceDelivery: false,
	GuaranteedOrder:     true,
	Persistent:          true,
}

// TestMemoryTransportPubSub runs watermill's universal Pub/Sub suite
// against a persistent MemoryTransport. Publish is asynchronous here: the
// suite publishes to topics it is itself subscribed to from the goroutine
// that reads them (TestMessageCtx), which the default, waiting Publish
// documents as its one restriction.
func TestMemoryTransportPubSub(t *testing.T) {
	t.Parallel()
	tr := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Persistent: true, AsyncPublish: true, Logger: testLogger()})
	t.Cleanup(func() { require.NoError(t, tr.Close()) })

	// Every pair of the plain constructor is one more member of the same
	// consumer group, as replicas of one service are.
	pubSub := func(t *testing.T) (message.Publisher, message.Subscriber) {
		sub, err := tr.Subscriber("suite")
		require.NoError(t, err)
		return tr.Publisher(), sub
	}
	groupPubSub := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		sub, err := tr.Subscriber(group)
		require.NoError(t, err)
		return tr.Publisher(), sub
	}
	tests.TestPubSub(t, memoryFeatures, pubSub, groupPubSub)
}

// TestMemoryTransportNewGroupReceivesOldMessages runs the suite's test of
// a new consumer group starting from a topic's oldest message: each
// constructor call is a group of its own.
func TestMemoryTransportNewGroupReceivesOldMessages(t *testing.T) {
	t.Parallel()
	tr := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Persistent: true, AsyncPublish: true, Logger: testLogger()})
	t.Cleanup(func() { require.NoError(t, tr.Close()) })
	features := memoryFeatures
	features.NewSubscriberReceivesOldMessages = true
	newGroup := func(t *testing.T) (message.Publisher, message.Subscriber) {
		sub, err := tr.Subscriber("group-" + watermill.NewShortUUID())
		require.NoError(t, err)
		return tr.Publisher(), sub
	}
	tests.TestNewSubscriberReceivesOldMessages(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, newGroup)
}

// subscribe subscribes a new member of group to topic; its subscription
// ends with the test.
func subscribe(t *testing.T, tr *eventbus.MemoryTransport, group, topic string) (<-chan *message.Message, message.Subscriber) {
	t.Helper()
	sub, err := tr.Subscriber(group)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	ch, err := sub.Subscribe(context.Background(), topic)
	require.NoError(t, err)
	return ch, sub
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.True(t, ok, "channel closed")
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return nil
	}
}

func TestMemoryTransportWaitingPublish(t *testing.T) {
	t.Parallel()
	tr := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: testLogger()})
	defer tr.Close()

	// No group subscribed: not kept, and Publish does not wait.
	require.NoError(t, tr.Publisher().Publish("t", message.NewMessage("lost", nil)))

	ch, _ := subscribe(t, tr, "g", "t")
	var returned atomic.Bool
	done := make(chan error, 1)
	go func() {
		err := tr.Publisher().Publish("t", message.NewMessage("m1", nil), message.NewMessage("m2", nil))
		returned.Store(true)
		done <- err
	}()
	m := receive(t, ch)
	require.Equal(t, "m1", m.UUID, "the message published without a subscriber is not kept")
	m.Ack()
	m = receive(t, ch)
	require.Equal(t, "m2", m.UUID)
	require.False(t, returned.Load(), "Publish returned before its last message was acknowledged")
	m.Ack()
	require.NoError(t, <-done)
}

func TestMemoryTransportGroups(t *testing.T) {
	t.Parallel()
	tr := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Persistent: true, AsyncPublish: true, Logger: testLogger()})
	defer tr.Close()
	pub := tr.Publisher()

	ctx, leave := context.WithCancel(context.Background())
	sub, err := tr.Subscriber("a")
	require.NoError(t, err)
	defer sub.Close()
	a1, err := sub.Subscribe(ctx, "t")
	require.NoError(t, err)
	b, _ := subscribe(t, tr, "b", "t")
	require.NoError(t, pub.Publish("t", message.NewMessage("m1", nil), message.NewMessage("m2", nil)))

	// Group b gets both, in order, the second only after the first's ack.
	m := receive(t, b)
	require.Equal(t, "m1", m.UUID)
	m.Nack()
	m = receive(t, b)
	require.Equal(t, "m1", m.UUID, "a nacked message is delivered again")
	select {
	case early := <-b:
		t.Fatalf("%s delivered before m1 was acknowledged", early.UUID)
	case <-time.After(20 * time.Millisecond):
	}
	m.Ack()
	require.Equal(t, "m2", receive(t, b).UUID)

	// Group a: a member that leaves without acknowledging m1 hands it to
	// the group's next member, which then goes on with m2.
	m = receive(t, a1)
	require.Equal(t, "m1", m.UUID)
	leave()
	for range a1 {
	}
	select {
	case <-m.Context().Done():
	default:
		t.Error("message context not canceled when its subscription ended")
	}
	a2, _ := subscribe(t, tr, "a", "t")
	m = receive(t, a2)
	require.Equal(t, "m1", m.UUID)
	m.Ack()
	m = receive(t, a2)
	require.Equal(t, "m2", m.UUID)
	m.Ack()

	// Two members of group c share its messages: each once, in order.
	c1, _ := subscribe(t, tr, "c", "u")
	c2, _ := subscribe(t, tr, "c", "u")
	var want, got []string
	for i := range 20 {
		id := fmt.Sprintf("u%02d", i)
		want = append(want, id)
		require.NoError(t, pub.Publish("u", message.NewMessage(id, nil)))
	}
	for range want {
		m := receiveEither(t, c1, c2)
		got = append(got, m.UUID)
		m.Ack()
	}
	require.Equal(t, want, got)
	select {
	case m := <-c1:
		t.Fatalf("%s delivered twice", m.UUID)
	case m := <-c2:
		t.Fatalf("%s delivered twice", m.UUID)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestMemoryTransportClose(t *testing.T) {
	t.Parallel()
	tr := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: testLogger()})
	ch, sub := subscribe(t, tr, "g", "t")
	published := make(chan error, 1)
	go func() { published <- tr.Publisher().Publish("t", message.NewMessage("m1", nil)) }()
	m := receive(t, ch)
	require.NoError(t, tr.Close())
	_, open := <-ch
	require.False(t, open, "channel open after the transport's Close returned")
	require.NoError(t, <-published, "a waiting Publish returns when the transport closes")
	select {
	case <-m.Context().Done():
	default:
		t.Error("message context not canceled by Close")
	}
	require.ErrorIs(t, tr.Publisher().Publish("t", message.NewMessage("m2", nil)), eventbus.ErrTransportClosed)
	_, err := sub.Subscribe(context.Background(), "t")
	require.ErrorIs(t, err, eventbus.ErrTransportClosed)
	require.NoError(t, tr.Close(), "second Close")
}

// receiveEither returns the next message of either channel.
func receiveEither(t *testing.T, a, b <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m := <-a:
		return m
	case m := <-b:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
		return nil
	}
}

// BenchmarkMemoryTransport publishes b.N messages to one topic and
// consumes them with one consumer group, acknowledging each, against
// watermill's GoChannel configured alike (waiting Publish, or not).
func BenchmarkMemoryTransport(b *testing.B) {
	type pubSub struct {
		pub message.Publisher
		sub message.Subscriber
		end func()
	}
	for _, async := range []bool{false, true} {
		mode := "waiting"
		if async {
			mode = "async"
		}
		impls := map[string]func() pubSub{
			"dddkit": func() pubSub {
				tr := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{AsyncPublish: async, Logger: testLogger()})
				sub, _ := tr.Subscriber("bench")
				return pubSub{tr.Publisher(), sub, func() { _ = tr.Close() }}
			},
			"gochannel": func() pubSub {
				ch := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: !async}, watermill.NopLogger{})
				return pubSub{ch, ch, func() { _ = ch.Close() }}
			},
		}
		for _, name := range []string{"dddkit", "gochannel"} {
			b.Run(mode+"/"+name, func(b *testing.B) {
				ps := impls[name]()
				defer ps.end()
				msgs, err := ps.sub.Subscribe(context.Background(), "t")
				require.NoError(b, err)
				done := make(chan struct{})
				go func() {
					defer close(done)
					for range b.N {
						m, ok := <-msgs
						if !ok {
							return
						}
						m.Ack()
					}
				}()
				payload := []byte(`{"email":"ada@example.com"}`)
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					if err := ps.pub.Publish("t", message.NewMessage(fmt.Sprint(i), payload)); err != nil {
						b.Fatal(err)
					}
				}
				<-done
				b.StopTimer()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			})
		}
	}
}
