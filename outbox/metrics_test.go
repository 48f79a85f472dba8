package outbox_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/retry"
)

func TestRelayMetricsCountPublishedAndFailedEvents(t *testing.T) {
	t.Parallel()
	box, reg := newMemory(t)
	ctx := t.Context()
	require.NoError(t, box.Append(ctx, envelope("c1", 1), envelope("c1", 2), envelope("c2", 1)))
	require.NoError(t, box.Append(ctx, envelope("bad", 1)))
	m := testinfra.NewMetrics(t)
	var hooked atomic.Int64
	pub := &aggregatePublisher{fail: "bad"}
	relay, err := outbox.NewRelayOn(box, pub, reg, &outbox.RelayConfig{
		Retry: retry.Policy{MaxAttempts: 1},
		Hooks: outbox.Hooks{OnPublished: func(events []aggregate.Envelope, _ time.Duration) { hooked.Add(int64(len(events))) }},
	}, m.Meter())
	require.NoError(t, err)
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.EqualValues(t, 3, hooked.Load(), "the configured hooks still run")

	topic := attribute.String("messaging.destination.name", reg.Topic("cart"))
	published, _ := m.Value(t, "dddkit.outbox.relay.published", topic)
	require.Equal(t, 3.0, published)
	failed, _ := m.Value(t, "dddkit.outbox.relay.attempt_failures", topic, attribute.String("dddkit.outcome", "failed"))
	require.Equal(t, 1.0, failed, "the poison event ran out of its one attempt")
	retried, _ := m.Value(t, "dddkit.outbox.relay.attempt_failures", attribute.String("dddkit.outcome", "retry"))
	require.Zero(t, retried)
	calls, _ := m.Value(t, "dddkit.outbox.relay.publish.duration", topic)
	sizes := m.Collect(t, "dddkit.outbox.relay.batch.size", topic)
	require.Len(t, sizes, 1)
	require.Equal(t, calls, sizes[0].Value, "one size and one duration per successful publish call")
	require.Equal(t, 3.0, sizes[0].Sum, "the sizes add up to the events published")
}

// aggregatePublisher fails the publish calls that carry an event of
// aggregate fail.
type aggregatePublisher struct{ fail string }

func (p *aggregatePublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if p.fail != "" && m.Metadata.Get("ce_subject") == p.fail {
			return errors.New("broker says no")
		}
	}
	return nil
}

func (*aggregatePublisher) Close() error { return nil }

// countingSource counts Stats calls, and never leads: its relay stands
// by, so the outbox keeps what it holds.
type countingSource struct {
	outbox.Source
	stats atomic.Int64
}

func (s *countingSource) Stats(ctx context.Context) (outbox.Stats, error) {
	s.stats.Add(1)
	return s.Source.Stats(ctx)
}

func (s *countingSource) Lead(ctx context.Context, _ func(context.Context, <-chan struct{}) error) error {
	<-ctx.Done()
	return nil
}

// The gauges read the outbox in the background, once per StatsInterval:
// however often the metrics are collected (a /metrics scrape), no
// collection reads the outbox.
func TestRelayGaugesDoNotReadTheOutboxPerCollection(t *testing.T) {
	t.Parallel()
	box, reg := newMemory(t)
	ctx := t.Context()
	require.NoError(t, box.Append(ctx, envelope("c1", 1), envelope("c1", 2), envelope("c2", 1)))
	src := &countingSource{Source: box}
	m := testinfra.NewMetrics(t)
	relay, err := outbox.NewRelayOn(src, &aggregatePublisher{}, reg, &outbox.RelayConfig{StatsInterval: time.Hour}, m.Meter())
	require.NoError(t, err)

	_, ok := m.Value(t, "dddkit.outbox.pending")
	require.False(t, ok, "no gauges before the relay runs")
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(runCtx) }()
	require.Eventually(t, func() bool { return src.stats.Load() == 1 }, 10*time.Second, time.Millisecond, "read once when the relay starts")
	require.Eventually(t, func() bool { _, ok := m.Value(t, "dddkit.outbox.pending"); return ok }, 10*time.Second, time.Millisecond)

	for range 200 {
		pending, _ := m.Value(t, "dddkit.outbox.pending")
		require.Equal(t, 3.0, pending)
		leader, ok := m.Value(t, "dddkit.outbox.relay.leader")
		require.True(t, ok)
		require.Zero(t, leader, "the relay stands by")
		failed, ok := m.Value(t, "dddkit.outbox.failed")
		require.True(t, ok)
		require.Zero(t, failed)
		_, ok = m.Value(t, "dddkit.outbox.oldest_pending.age")
		require.True(t, ok)
	}
	require.EqualValues(t, 1, src.stats.Load(), "200 collections read the outbox's stats no more")

	cancel()
	require.NoError(t, <-done)
	_, ok = m.Value(t, "dddkit.outbox.pending")
	require.False(t, ok, "a stopped relay reports no gauges")
}
