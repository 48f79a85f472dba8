package aggstore

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// StartSave starts the span of a repository save of root ("save TYPE"),
// for every adapter; end it with telemetry.End. The events the save
// stores carry this span as their trace parent ([PendingEvents]).
func StartSave(ctx context.Context, aggregateType string, root *aggregate.Root) (context.Context, trace.Span) {
	t, ok := telemetry.Active()
	if !ok {
		return ctx, telemetry.NoSpan()
	}
	ctx, span := t.Start(ctx, "save "+aggregateType, trace.WithSpanKind(trace.SpanKindInternal))
	if span.IsRecording() {
		span.SetAttributes(
			telemetry.AttrAggregateType.String(aggregateType),
			telemetry.AttrAggregateID.String(root.ID()),
			telemetry.AttrAggregateVersion.Int64(root.Version()),
			telemetry.AttrEventCount.Int64(root.Version()-root.CommittedVersion()),
		)
		span.SetAttributes(telemetry.MetadataAttrs(aggregate.MetadataFromContext(ctx))...)
	}
	return ctx, span
}
