package projection

import (
	"context"

	"go.opentelemetry.io/otel/metric"

	"github.com/dddkit/dddkit/internal/telemetry"
)

// The gauges of a [Runner], recorded after each batch from what the
// batch read anyway (its checkpoint and the stream's head): measuring
// them costs no query. A projection fed by the event bus (see
// [Projection.Subscribe]) is a consumer instead: its figures are the
// consumer metrics of package eventbus and kafka, under the
// projection's name.
var (
	positionGauge = telemetry.Must(telemetry.Meter().Int64Gauge("dddkit.projection.position",
		metric.WithUnit("{position}"),
		metric.WithDescription("Stream position of the last event a projection applied, by projection.")))
	lagGauge = telemetry.Must(telemetry.Meter().Int64Gauge("dddkit.projection.lag",
		metric.WithUnit("{position}"),
		metric.WithDescription("Stream positions between a projection's checkpoint and the stream's head, by projection: an upper bound of the events it has still to apply, 0 once caught up.")))
)

// recordProgress records the runner's position after a step that
// handled n events, with head the stream's head the step read.
func (r *Runner) recordProgress(ctx context.Context, cp Checkpoint, head int64, n int) {
	if !positionGauge.Enabled(ctx) {
		return
	}
	attrs := telemetry.Attrs(telemetry.AttrProjection.String(r.p.name))
	positionGauge.Record(ctx, cp.Position, attrs)
	lag := int64(0)
	if n > 0 {
		lag = max(head-cp.Position, 0)
	}
	lagGauge.Record(ctx, lag, attrs)
}
