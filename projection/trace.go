package projection

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// startApply starts the span of projection applying env ("project
// NAME"): a child of the consumer's span of the event, or of the span
// that recorded it (see telemetry.StartForEvent). End it with
// telemetry.End.
func startApply(ctx context.Context, projection string, env aggregate.Envelope) (context.Context, trace.Span) {
	if _, ok := telemetry.Active(); !ok {
		return ctx, telemetry.NoSpan() // no name or attributes built while tracing is off
	}
	return telemetry.StartForEvent(ctx, "project "+projection, trace.SpanKindInternal, env, telemetry.AttrProjection.String(projection))
}
