package eventbus

import (
	"context"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// consumers are the OpenTelemetry instruments of every consumer in the
// process: the handlers of a [Router] and [BatchProcessor]s (see
// "Metrics" in the package documentation). They are made once, through
// the global MeterProvider's delegate, so an SDK installed later still
// gets them.
var consumers = newConsumerMetrics(telemetry.Meter())

type consumerMetrics struct {
	events  metric.Int64Counter
	retries metric.Int64Counter
	delay   metric.Float64Histogram
	attrs   sync.Map // consumerKey → *consumerAttrs
}

type consumerKey struct{ group, topic string }

type consumerAttrs struct {
	handled, deadLettered, group metric.MeasurementOption
	groupOnly                    metric.MeasurementOption // the retries know no topic
}

func newConsumerMetrics(meter metric.Meter) *consumerMetrics {
	return &consumerMetrics{
		events: telemetry.Must(meter.Int64Counter("dddkit.consumer.events", metric.WithUnit("{event}"),
			metric.WithDescription(`Events a consumer is done with, by consumer group (handler name), topic and outcome: "handled" (handled, or acknowledged as not for it) or "dead_lettered".`))),
		retries: telemetry.Must(meter.Int64Counter("dddkit.consumer.retries", metric.WithUnit("{attempt}"),
			metric.WithDescription("Failed handler attempts that are tried again, by consumer group."))),
		delay: telemetry.Must(meter.Float64Histogram("dddkit.consumer.delay", metric.WithUnit("s"),
			metric.WithDescription("Time from an event's occurrence (its ce_time) to the end of its handling, by consumer group and topic."),
			metric.WithExplicitBucketBoundaries(telemetry.DurationBuckets...))),
	}
}

func (m *consumerMetrics) of(group, topic string) *consumerAttrs {
	k := consumerKey{group, topic}
	if a, ok := m.attrs.Load(k); ok {
		return a.(*consumerAttrs)
	}
	g, t := telemetry.AttrMessagingConsumerGroup.String(group), telemetry.AttrMessagingDestination.String(topic)
	a := &consumerAttrs{
		handled:      telemetry.Attrs(g, t, telemetry.AttrOutcome.String("handled")),
		deadLettered: telemetry.Attrs(g, t, telemetry.AttrOutcome.String("dead_lettered")),
		group:        telemetry.Attrs(g, t),
		groupOnly:    telemetry.Attrs(g),
	}
	v, _ := m.attrs.LoadOrStore(k, a)
	return v.(*consumerAttrs)
}

// handled records events done with (handled or acknowledged) by group,
// and their delay since they occurred.
func (m *consumerMetrics) handled(ctx context.Context, group, topic string, envs ...aggregate.Envelope) {
	if len(envs) == 0 || !m.events.Enabled(ctx) {
		return
	}
	a := m.of(group, topic)
	m.events.Add(ctx, int64(len(envs)), a.handled)
	now := time.Now()
	for _, env := range envs {
		if !env.OccurredAt.IsZero() {
			m.delay.Record(ctx, max(now.Sub(env.OccurredAt), 0).Seconds(), a.group)
		}
	}
}

// deadLettered records an event that group sent to the dead-letter topic.
func (m *consumerMetrics) deadLettered(ctx context.Context, group, topic string) {
	if m.events.Enabled(ctx) {
		m.events.Add(ctx, 1, m.of(group, topic).deadLettered)
	}
}

// retried records a failed attempt of group that is tried again.
func (m *consumerMetrics) retried(ctx context.Context, group string) {
	if m.retries.Enabled(ctx) {
		m.retries.Add(ctx, 1, m.of(group, "").groupOnly)
	}
}

// handledItems records the items of a batch that carried an event.
func (m *consumerMetrics) handledItems(ctx context.Context, group, topic string, items []batchItem) {
	if !m.events.Enabled(ctx) {
		return
	}
	envs := make([]aggregate.Envelope, 0, len(items))
	for _, it := range items {
		envs = append(envs, it.env)
	}
	m.handled(ctx, group, topic, envs...)
}
