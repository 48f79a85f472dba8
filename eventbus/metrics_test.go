package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/retry"
)

type ticked struct{ Fail bool }

func (ticked) EventName() string { return "metrics.ticked" }

// A router's handlers count the events they are done with by outcome,
// the attempts they retry, and the delay since each event occurred.
func TestRouterMetrics(t *testing.T) {
	t.Parallel()
	m := testinfra.GlobalMetrics()
	topic, group := dddkittest.UniqueName(t), dddkittest.UniqueName(t)
	tr := eventbus.NewMemoryTransport(nil)
	t.Cleanup(func() { _ = tr.Close() })
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(string) string { return topic }})
	require.NoError(t, eventbus.Register[ticked](reg, eventbus.AggregateType("clock")))
	r, err := eventbus.NewRouter(tr, reg, &eventbus.RouterConfig{
		DeadLetterTopic: topic + ".dlq",
		Retry:           retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
	})
	require.NoError(t, err)
	require.NoError(t, eventbus.Handle(r, group, func(_ context.Context, e ticked, _ aggregate.Envelope) error {
		if e.Fail {
			return errors.New("cannot tick")
		}
		return nil
	}))
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	t.Cleanup(func() {
		require.NoError(t, r.Close())
		require.NoError(t, <-done)
	})
	<-r.Running()

	pub, err := eventbus.NewPublisher(tr.Publisher(), reg)
	require.NoError(t, err)
	occurred := time.Now().Add(-time.Hour)
	var envs []aggregate.Envelope
	for i, fail := range []bool{false, false, true, false} {
		envs = append(envs, aggregate.Envelope{
			// clocks of their own: a dead letter parks the later events of its key
			ID: fmt.Sprintf("%s-%d", group, i), Name: ticked{}.EventName(), AggregateType: "clock", AggregateID: fmt.Sprintf("c%d", i),
			Version: 1, OccurredAt: occurred, Payload: ticked{Fail: fail},
		})
	}
	require.NoError(t, pub.Publish(t.Context(), envs...))

	g, tp := attribute.String("messaging.consumer.group.name", group), attribute.String("messaging.destination.name", topic)
	require.Eventually(t, func() bool {
		n, _ := m.Value(t, "dddkit.consumer.events", g, tp)
		return n == 4
	}, 10*time.Second, 5*time.Millisecond)
	handled, _ := m.Value(t, "dddkit.consumer.events", g, tp, attribute.String("dddkit.outcome", "handled"))
	require.Equal(t, 3.0, handled)
	dead, _ := m.Value(t, "dddkit.consumer.events", g, tp, attribute.String("dddkit.outcome", "dead_lettered"))
	require.Equal(t, 1.0, dead)
	retries, _ := m.Value(t, "dddkit.consumer.retries", g)
	require.Equal(t, 2.0, retries, "3 attempts: 2 retried, then the dead letter")
	delays := m.Collect(t, "dddkit.consumer.delay", g, tp)
	require.Len(t, delays, 1)
	require.Equal(t, 3.0, delays[0].Value, "one delay per handled event")
	require.GreaterOrEqual(t, delays[0].Sum, 3*time.Hour.Seconds(), "the delay runs from the event's occurred-at time")
}

// HandleOnce on a BatchTransport records the same consumer metrics: the
// events of a batch that committed, and the one it dead-lettered.
func TestBatchMetrics(t *testing.T) {
	t.Parallel()
	m := testinfra.GlobalMetrics()
	topic, group := dddkittest.UniqueName(t), dddkittest.UniqueName(t)
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(string) string { return topic }})
	require.NoError(t, eventbus.Register[ticked](reg, eventbus.AggregateType("clock")))
	var msgs []*message.Message
	for i, fail := range []bool{false, true, false, false} {
		msg, err := reg.Encode(aggregate.Envelope{
			// clocks of their own: a dead letter parks the later events of its key
			ID: fmt.Sprintf("%s-%d", group, i), Name: ticked{}.EventName(), AggregateType: "clock", AggregateID: fmt.Sprintf("c%d", i),
			Version: 1, OccurredAt: time.Now(), Payload: ticked{Fail: fail},
		})
		require.NoError(t, err)
		msgs = append(msgs, msg)
	}
	tr := &batchTransport{batch: msgs, handled: make(chan bool, 1)}
	r, err := eventbus.NewRouter(tr, reg, &eventbus.RouterConfig{Logger: quiet})
	require.NoError(t, err)
	require.NoError(t, eventbus.HandleOnce(r, group, eventbus.NewMemoryInbox(), func(_ context.Context, e ticked, _ aggregate.Envelope) error {
		if e.Fail {
			return eventbus.Permanent(errors.New("cannot tick"))
		}
		return nil
	}))
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	require.True(t, <-tr.handled, "the batch was not handled to the end")
	require.NoError(t, r.Close())
	require.NoError(t, <-done)
	require.Len(t, tr.deadLetters, 1)

	g, tp := attribute.String("messaging.consumer.group.name", group), attribute.String("messaging.destination.name", topic)
	handled, _ := m.Value(t, "dddkit.consumer.events", g, tp, attribute.String("dddkit.outcome", "handled"))
	require.Equal(t, 3.0, handled)
	dead, _ := m.Value(t, "dddkit.consumer.events", g, tp, attribute.String("dddkit.outcome", "dead_lettered"))
	require.Equal(t, 1.0, dead)
	delays, _ := m.Value(t, "dddkit.consumer.delay", g, tp)
	require.Equal(t, 3.0, delays)
}
