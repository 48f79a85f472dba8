package cqrs

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// startDispatch starts, with t (tracing is on: telemetry.Active), the
// span of one command or query dispatch, named "command NAME" or "query
// NAME", with the correlation and causation IDs of ctx's metadata.
// While tracing is off the bus does not call it: a dispatch then costs
// one telemetry.Active check more than without tracing.
func startDispatch(ctx context.Context, t trace.Tracer, kind Kind, name string) (context.Context, trace.Span) {
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

// endDispatch ends a dispatch span: a failure is its error status, a
// refusal ([IsRefusal]) only the attribute dddkit.refused.
func endDispatch(span trace.Span, err error) {
	if err != nil && IsRefusal(err) {
		span.SetAttributes(attribute.Bool("dddkit.refused", true))
		err = nil
	}
	telemetry.End(span, err)
}
