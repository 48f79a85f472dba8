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

// StartForEvent starts a span named name that handles the event env: a
// child of ctx's span when that span is in the event's trace (a handler inside the consumer span of its message); otherwise a
// child of the event's trace context, linked to ctx's span (an event
// handled in a batch, whose span has a trace of its own), so that the
// trace of the request that recorded the event runs on through its
// handler. Without trace context in the event's metadata it is a child
// of ctx's span. Its attributes are attrs, then the event's ID, name,
// aggregate type and ID, and its correlation and causation IDs. End it
// with [End].
func StartForEvent(ctx context.Context, name string, kind trace.SpanKind, env aggregate.Envelope, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	md := env.Metadata
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
		span.SetAttributes(attrs...)
		span.SetAttributes(
			AttrEventID.String(env.ID),
			AttrEventName.String(env.Name),
			AttrAggregateType.String(env.AggregateType),
			AttrAggregateID.String(env.AggregateID),
		)
		span.SetAttributes(MetadataAttrs(md)...)
	}
	return ctx, span
}

// Messaging returns the messaging attributes of a span of operation op
// ([OpSend], [OpProcess]) on topic: operation type and name,
// destination, and the messaging system when system is not "".
func Messaging(op, topic, system string) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, 4)
	out = append(out, AttrMessagingOperationType.String(op), AttrMessagingOperationName.String(op), AttrMessagingDestination.String(topic))
	if system != "" {
		out = append(out, AttrMessagingSystem.String(system))
	}
	return out
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
