package eventbus

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/trace"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// startProcess starts the consumer span of one delivery of env to
// handler (consumer group) on topic: "process TOPIC", a child of the
// span that recorded the event (its trace context travels in the
// message), per the messaging semantic conventions. system is the
// messaging system ("kafka"), "" when the transport does not say. End
// it with telemetry.End.
func startProcess(ctx context.Context, system, handler, topic string, env aggregate.Envelope) (context.Context, trace.Span) {
	if _, ok := telemetry.Active(); !ok {
		return ctx, telemetry.NoSpan() // no name or attributes built while tracing is off
	}
	attrs := append(telemetry.Messaging(telemetry.OpProcess, topic, system),
		telemetry.AttrMessagingConsumerGroup.String(handler),
		telemetry.AttrMessagingMessageID.String(env.ID),
		telemetry.AttrHandler.String(handler))
	return telemetry.StartForEvent(ctx, "process "+topic, trace.SpanKindConsumer, env, attrs...)
}

// startBatch starts the consumer span of a batch of msgs that handler
// processes from topic: "process TOPIC" with the batch size, linked to
// the trace of each message's event (each event's own handling then
// continues that trace, see startHandle).
func startBatch(ctx context.Context, system, handler, topic string, msgs []*message.Message) (context.Context, trace.Span) {
	t, ok := telemetry.Active()
	if !ok {
		return ctx, telemetry.NoSpan()
	}
	links := make([]trace.Link, 0, len(msgs))
	for _, m := range msgs {
		md := aggregate.Metadata{TraceParent: m.Metadata.Get(HeaderTraceParent), TraceState: m.Metadata.Get(HeaderTraceState)}
		if l, ok := telemetry.Link(md); ok {
			links = append(links, l)
		}
	}
	ctx, span := t.Start(ctx, "process "+topic, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithLinks(links...))
	if span.IsRecording() {
		span.SetAttributes(telemetry.Messaging(telemetry.OpProcess, topic, system)...)
		span.SetAttributes(
			telemetry.AttrMessagingConsumerGroup.String(handler),
			telemetry.AttrMessagingBatchCount.Int(len(msgs)),
			telemetry.AttrHandler.String(handler),
		)
	}
	return ctx, span
}

// startHandle starts the span of handler's function running for env:
// "handle EVENT", a child of the consumer span of its message, or (in a
// batch) of the span that recorded the event, linked to the batch's.
func startHandle(ctx context.Context, handler string, env aggregate.Envelope) (context.Context, trace.Span) {
	if _, ok := telemetry.Active(); !ok {
		return ctx, telemetry.NoSpan() // no name or attributes built while tracing is off
	}
	return telemetry.StartForEvent(ctx, "handle "+env.Name, trace.SpanKindInternal, env, telemetry.AttrHandler.String(handler))
}

// startInbox starts the span of an inbox's Process or ProcessBatch for
// handler over n events ("inbox HANDLER"); end it with telemetry.End.
func startInbox(ctx context.Context, handler string, n int) (context.Context, trace.Span) {
	return telemetry.StartInbox(ctx, handler, n)
}
