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
	ctx, span := telemetry.StartForEvent(ctx, "project "+projection, trace.SpanKindInternal, env.Metadata)
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrProjection.String(projection),
			telemetry.AttrEventID.String(env.ID),
			telemetry.AttrEventName.String(env.Name),
			telemetry.AttrAggregateType.String(env.AggregateType),
			telemetry.AttrAggregateID.String(env.AggregateID),
		)
	}
	return ctx, span
}
