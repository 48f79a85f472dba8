package outbox_test

import (
	"testing"

	"go.opentelemetry.io/otel/metric"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
)

// BenchmarkRelayMetrics measures what the relay's instruments cost its
// throughput: an in-memory outbox relayed to a publisher that accepts
// everything at once, so that the relay's own work is all there is. One
// op relays a batch of 1,000 events. off: no instruments; noop: the
// instruments on the global MeterProvider with no SDK installed (what a
// service that does not collect metrics runs); sdk: an OpenTelemetry SDK
// with a manual reader.
//
//	go test -run='^$' -bench=RelayMetrics -benchmem -count=6 ./outbox/
func BenchmarkRelayMetrics(b *testing.B) {
	const batch = 1000
	sdk := testinfra.NewMetrics(b)
	for _, mode := range []struct {
		name  string
		meter metric.Meter
	}{
		{"off", nil},
		{"noop", telemetry.Meter()},
		{"sdk", sdk.Meter()},
	} {
		b.Run(mode.name, func(b *testing.B) {
			box, reg := newMemory(b)
			relay, err := outbox.NewRelayOn(box, &aggregatePublisher{}, reg, &outbox.RelayConfig{BatchSize: batch}, mode.meter)
			if err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			events := make([]aggregate.Envelope, batch)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for i := range events {
					events[i] = envelope("c"+string(rune('a'+i%26)), int64(i/26+1))
				}
				if err := box.Append(ctx, events...); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				n, err := relay.Flush(ctx)
				if err != nil || n != batch {
					b.Fatalf("flushed %d, %v", n, err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
