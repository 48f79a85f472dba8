package outbox

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/dddkit/dddkit/internal/telemetry"
)

// startPublish starts the span of one publisher call of the relay, a
// batch of items[idx] to topic ("send TOPIC", a producer span per the
// messaging semantic conventions). It links to the trace of each event
// (the span that saved it), so that a trace viewer leads from an event's
// trace to the batch that published it; end it with telemetry.End.
func startPublish(ctx context.Context, pub any, topic string, items []Pending, idx []int) (context.Context, trace.Span) {
	t, ok := telemetry.Active()
	if !ok {
		return ctx, telemetry.NoSpan()
	}
	links := make([]trace.Link, 0, len(idx))
	for _, i := range idx {
		if l, ok := telemetry.Link(items[i].Event.Metadata); ok {
			links = append(links, l)
		}
	}
	ctx, span := t.Start(ctx, "send "+topic, trace.WithSpanKind(trace.SpanKindProducer), trace.WithLinks(links...))
	if span.IsRecording() {
		span.SetAttributes(telemetry.Messaging(telemetry.OpSend, topic, telemetry.System(pub))...)
		span.SetAttributes(telemetry.AttrMessagingBatchCount.Int(len(idx)))
	}
	return ctx, span
}
