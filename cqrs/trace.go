package cqrs

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// startDispatch starts the span of one command or query dispatch, named
// "command NAME" or "query NAME", with the correlation and causation IDs
// of ctx's metadata. While tracing is off it returns ctx and a span that
// records nothing, without allocating.
func startDispatch(ctx context.Context, kind Kind, name string) (context.Context, trace.Span) {
	t, ok := telemetry.Active()
	if !ok {
		return ctx, telemetry.NoSpan()
	}
	ctx, span := t.Start(ctx, kind.String()+" "+name, trace.WithSpanKind(trace.SpanKindInternal))
	if span.IsRecording() {
		key := telemetry.AttrCommand
		if kind == KindQuery {
			key = telemetry.AttrQuery
		}
		span.SetAttributes(key.String(name))
		span.SetAttributes(telemetry.MetadataAttrs(aggregate.MetadataFromContext(ctx))...)
	}
	return ctx, span
}
