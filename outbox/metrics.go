package outbox

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// DefaultStatsInterval is how often a running [Relay] reads its
// [Source]'s [Stats] for its gauges, unless [RelayConfig].StatsInterval
// says otherwise.
const DefaultStatsInterval = 15 * time.Second

// relayMetrics are a relay's OpenTelemetry instruments (see "Metrics" in
// the package documentation); a nil *relayMetrics records nothing. The
// counters and histograms are fed by the relay's processor; the gauges report the
// Stats that the relay reads in the background every StatsInterval,
// never on a collection, so that a scrape costs the database nothing.
type relayMetrics struct {
	meter      metric.Meter
	reg        *eventbus.Registry
	publishedC metric.Int64Counter
	failures   metric.Int64Counter
	size       metric.Int64Histogram
	duration   metric.Float64Histogram
	gauges     []metric.Observable

	pending, retrying, failed, scheduled metric.Int64ObservableGauge
	oldest                               metric.Float64ObservableGauge
	leader                               metric.Int64ObservableUpDownCounter

	topics sync.Map              // topic → *topicAttrs
	stats  atomic.Pointer[Stats] // last read; nil before the first reading
}

type topicAttrs struct {
	topic, retry, final metric.MeasurementOption
}

func newRelayMetrics(meter metric.Meter, reg *eventbus.Registry) *relayMetrics {
	m := &relayMetrics{meter: meter, reg: reg}
	events := metric.WithUnit("{event}")
	m.publishedC = telemetry.Must(meter.Int64Counter("dddkit.outbox.relay.published", events,
		metric.WithDescription("Events the relay published (acknowledged by the publisher), by topic.")))
	m.failures = telemetry.Must(meter.Int64Counter("dddkit.outbox.relay.attempt_failures", events,
		metric.WithDescription(`Failed publish attempts of events, by topic and outcome: "retry" (tried again later) or "failed" (out of attempts).`)))
	m.size = telemetry.Must(meter.Int64Histogram("dddkit.outbox.relay.batch.size", events,
		metric.WithDescription("Events per successful publish call: a fetched batch is published per topic, and split up to isolate a failure."),
		metric.WithExplicitBucketBoundaries(telemetry.SizeBuckets...)))
	m.duration = telemetry.Must(meter.Float64Histogram("dddkit.outbox.relay.publish.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of successful publish calls (until the broker acknowledged every event), by topic."),
		metric.WithExplicitBucketBoundaries(telemetry.DurationBuckets...)))
	gauge := func(name, desc string) metric.Int64ObservableGauge {
		g := telemetry.Must(meter.Int64ObservableGauge(name, events, metric.WithDescription(desc)))
		m.gauges = append(m.gauges, g)
		return g
	}
	m.pending = gauge("dddkit.outbox.pending", "Events waiting in the outbox, retrying ones included (read by a running relay every StatsInterval).")
	m.retrying = gauge("dddkit.outbox.retrying", "Pending outbox events whose publishing failed at least once.")
	m.failed = gauge("dddkit.outbox.failed", "Outbox events that ran out of attempts; each holds back the later events of its aggregate.")
	m.scheduled = gauge("dddkit.outbox.scheduled", "Deadlines waiting in the outbox to become due.")
	m.oldest = telemetry.Must(meter.Float64ObservableGauge("dddkit.outbox.oldest_pending.age", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest pending outbox event; 0 when none is pending.")))
	// An up-down counter rather than a gauge: the observations of several
	// relays in one process add up.
	m.leader = telemetry.Must(meter.Int64ObservableUpDownCounter("dddkit.outbox.relay.leader", metric.WithUnit("{relay}"),
		metric.WithDescription("Relays of this process that lead their outbox (publish): 1 while the relay of a process leads, 0 while it stands by.")))
	m.gauges = append(m.gauges, m.oldest, m.leader)
	return m
}

// published records a successful publish call of n events to topic
// that took took.
func (m *relayMetrics) published(topic string, n int, took time.Duration) {
	ctx := context.Background()
	if m == nil || !m.publishedC.Enabled(ctx) {
		return
	}
	t := m.attrs(topic)
	m.publishedC.Add(ctx, int64(n), t.topic)
	m.size.Record(ctx, int64(n), t.topic)
	m.duration.Record(ctx, took.Seconds(), t.topic)
}

// attemptFailed records a failed publish attempt of an event of
// aggregateType; final when it ran out of attempts.
func (m *relayMetrics) attemptFailed(aggregateType string, final bool) {
	ctx := context.Background()
	if m == nil || !m.failures.Enabled(ctx) {
		return
	}
	t := m.attrs(m.reg.Topic(aggregateType))
	opt := t.retry
	if final {
		opt = t.final
	}
	m.failures.Add(ctx, 1, opt)
}

// attrs returns the attribute sets of topic.
func (m *relayMetrics) attrs(topic string) *topicAttrs {
	if t, ok := m.topics.Load(topic); ok {
		return t.(*topicAttrs)
	}
	kv := telemetry.AttrMessagingDestination.String(topic)
	t := &topicAttrs{
		topic: telemetry.Attrs(kv),
		retry: telemetry.Attrs(kv, telemetry.AttrOutcome.String("retry")),
		final: telemetry.Attrs(kv, telemetry.AttrOutcome.String("failed")),
	}
	v, _ := m.topics.LoadOrStore(topic, t)
	return v.(*topicAttrs)
}

// observe makes the gauges report r while it runs: it reads r's Stats at
// once and then every StatsInterval in the background (while an SDK is
// installed), and registers the callback that reports the last reading.
// The returned function stops both.
func (m *relayMetrics) observe(ctx context.Context, r *Relay) (stop func()) {
	if m == nil {
		return func() {}
	}
	reg, err := m.meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		leader := int64(0)
		if r.IsLeader() {
			leader = 1
		}
		o.ObserveInt64(m.leader, leader)
		s := m.stats.Load()
		if s == nil {
			return nil
		}
		o.ObserveInt64(m.pending, s.Pending)
		o.ObserveInt64(m.retrying, s.Retrying)
		o.ObserveInt64(m.failed, s.Failed)
		o.ObserveInt64(m.scheduled, s.Scheduled)
		o.ObserveFloat64(m.oldest, s.OldestPending.Seconds())
		return nil
	}, m.gauges...)
	if err != nil {
		r.cfg.Logger.Warn("outbox: relay metrics: cannot register the gauges", "error", err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.StatsInterval)
		defer t.Stop()
		for {
			m.refresh(ctx, r)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		<-done
		_ = reg.Unregister()
		m.stats.Store(nil)
	}
}

// refresh reads r's Stats for the gauges, unless no SDK takes the
// measurements.
func (m *relayMetrics) refresh(ctx context.Context, r *Relay) {
	if !m.publishedC.Enabled(ctx) {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, max(r.cfg.StatsInterval, time.Second))
	defer cancel()
	s, err := r.src.Stats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.cfg.Logger.Warn("outbox: relay metrics: cannot read the outbox's stats", "error", err)
		}
		m.stats.Store(nil) // no gauges rather than stale ones
		return
	}
	m.stats.Store(&s)
}
