package telemetry

import (
	"context"

	"github.com/dddkit/dddkit/aggregate"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// StartOutboxWrite starts the span of an outbox write of n events
// ("outbox write"), for the in-memory and PostgreSQL outboxes; end it
// with [End].
func StartOutboxWrite(ctx context.Context, n int) (context.Context, trace.Span) {
	t, ok := Active()
	if !ok {
		return ctx, noSpan
	}
	ctx, span := t.Start(ctx, "outbox write", trace.WithSpanKind(trace.SpanKindInternal))
	if span.IsRecording() {
		span.SetAttributes(AttrEventCount.Int(n))
	}
	return ctx, span
}

// StartForEvent starts a span named name that handles the event whose
// metadata is md: a child of ctx's span when that span is in the event's
// trace (a handler inside the consumer span of its message); otherwise a
// child of the event's trace context, linked to ctx's span (an event
// handled in a batch, whose span has a trace of its own), so that the
// trace of the request that recorded the event runs on through its
// handler. Without trace context in md it is a child of ctx's span. The
// event's correlation and causation IDs become attributes. End it with
// [End].
func StartForEvent(ctx context.Context, name string, kind trace.SpanKind, md aggregate.Metadata) (context.Context, trace.Span) {
	t, ok := Active()
	if !ok {
		return ctx, noSpan
	}
	opts := make([]trace.SpanStartOption, 1, 2)
	opts[0] = trace.WithSpanKind(kind)
	if ev := SpanContext(md); ev.IsValid() {
		cur := trace.SpanContextFromContext(ctx)
		if !cur.IsValid() || cur.TraceID() != ev.TraceID() {
			if cur.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: cur}))
			}
			ctx = trace.ContextWithRemoteSpanContext(ctx, ev)
		}
	}
	ctx, span := t.Start(ctx, name, opts...)
	if span.IsRecording() {
		span.SetAttributes(MetadataAttrs(md)...)
	}
	return ctx, span
}

// Start starts an internal span named name as a child of ctx's span,
// with attrs; while tracing is off it returns ctx and a span that
// records nothing.
func Start(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	t, ok := Active()
	if !ok {
		return ctx, noSpan
	}
	ctx, span := t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindInternal))
	if span.IsRecording() {
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// StartInbox starts the span of an inbox's Process or ProcessBatch for
// handler over n events ("inbox HANDLER"), for every inbox adapter; end
// it with [End].
func StartInbox(ctx context.Context, handler string, n int) (context.Context, trace.Span) {
	t, ok := Active()
	if !ok {
		return ctx, noSpan
	}
	ctx, span := t.Start(ctx, "inbox "+handler, trace.WithSpanKind(trace.SpanKindInternal))
	if span.IsRecording() {
		span.SetAttributes(AttrHandler.String(handler), AttrEventCount.Int(n))
	}
	return ctx, span
}
