package dddkit_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/telemetry/telemetrytest"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/repository"
)

// One trace from a request to the handler of the event it recorded, over
// the in-memory adapters: command span → save span (the event's trace
// parent) → outbox write; the relay's send span links to the event's
// trace; the consumer's process span and the handler's span continue it.
// (Not parallel: it installs the global tracer provider.)
func TestTraceRunsFromRequestToHandler(t *testing.T) {
	rec := telemetrytest.Record(t)
	ctx := t.Context()

	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:test:trace"})
	require.NoError(t, eventbus.Register[Subscribed](reg, eventbus.AggregateType("subscriber")))
	box, err := outbox.NewMemory(reg)
	require.NoError(t, err)
	subscribers, err := repository.NewMemory(box, subscriberMapping, nil)
	require.NoError(t, err)
	bus, err := cqrs.New(nil)
	require.NoError(t, err)
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, c Subscribe) (struct{}, error) {
		s := &Subscriber{}
		s.Init(c.Email, "subscriber", s.apply)
		if err := s.Record(Subscribed(c)); err != nil {
			return struct{}{}, err
		}
		return struct{}{}, subscribers.Save(ctx, s)
	}))

	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Persistent: true})
	t.Cleanup(func() { _ = transport.Close() })
	router, err := eventbus.NewRouter(transport, reg, nil)
	require.NoError(t, err)
	handled := make(chan trace.SpanContext, 1)
	require.NoError(t, eventbus.HandleOnce(router, "welcome", eventbus.NewMemoryInbox(),
		func(ctx context.Context, _ Subscribed, _ aggregate.Envelope) error {
			handled <- trace.SpanContextFromContext(ctx)
			return nil
		}))
	rctx, stop := context.WithCancel(ctx)
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(rctx) }()
	t.Cleanup(func() { stop(); <-routerDone })
	<-router.Running()

	// The request: a span of the caller's, with a correlation ID.
	reqCtx, req := rec.Tracer().Start(aggregate.ContextWithMetadata(ctx, aggregate.Metadata{CorrelationID: "req-1"}), "POST /subscribe")
	_, err = cqrs.Send[struct{}](reqCtx, bus, Subscribe{Email: "ada@example.com"})
	req.End()
	require.NoError(t, err)
	traceID := req.SpanContext().TraceID()

	pending := box.Pending()
	require.Len(t, pending, 1)
	save := one(t, rec, "save subscriber")
	require.Equal(t, save.SpanContext().TraceID(), traceID)
	require.Equal(t, save.SpanContext().SpanID(), telemetrytest.SpanContext(pending[0].Metadata).SpanID(), "the event's traceparent is the save span")
	require.Equal(t, "req-1", telemetrytest.Attr(save, "dddkit.correlation_id"))
	command := one(t, rec, "command dddkit_test.Subscribe")
	require.Equal(t, req.SpanContext().SpanID(), command.Parent().SpanID())
	require.Equal(t, command.SpanContext().SpanID(), save.Parent().SpanID())
	require.Equal(t, save.SpanContext().SpanID(), one(t, rec, "outbox write").Parent().SpanID())

	relay, err := outbox.NewRelay(box, transport.Publisher(), reg, nil)
	require.NoError(t, err)
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	send := one(t, rec, "send subscriber.events")
	require.True(t, telemetrytest.Linked(send, traceID), "the relay's batch span links to the event's trace")
	require.Equal(t, trace.SpanKindProducer, send.SpanKind())
	require.Equal(t, "send", telemetrytest.Attr(send, "messaging.operation.type"))
	require.Equal(t, "subscriber.events", telemetrytest.Attr(send, "messaging.destination.name"))

	var inHandler trace.SpanContext
	select {
	case inHandler = <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not run")
	}
	require.Equal(t, traceID, inHandler.TraceID(), "the handler runs in the request's trace")
	process := waitOne(t, rec, "process subscriber.events")
	require.Equal(t, traceID, process.SpanContext().TraceID())
	require.Equal(t, save.SpanContext().SpanID(), process.Parent().SpanID(), "the consumer span is a child of the span that recorded the event")
	require.Equal(t, trace.SpanKindConsumer, process.SpanKind())
	require.Equal(t, "welcome", telemetrytest.Attr(process, "messaging.consumer.group.name"))
	require.Equal(t, "req-1", telemetrytest.Attr(process, "dddkit.correlation_id"))
	require.Equal(t, pending[0].ID, telemetrytest.Attr(process, "dddkit.event.id"))
	inbox := waitOne(t, rec, "inbox welcome")
	require.Equal(t, process.SpanContext().SpanID(), inbox.Parent().SpanID())
	handle := waitOne(t, rec, "handle newsletter.subscribed")
	require.Equal(t, inbox.SpanContext().SpanID(), handle.Parent().SpanID(), "the handler runs in the inbox's transaction")
	require.Equal(t, handle.SpanContext().SpanID(), inHandler.SpanID(), "the handler's own work is a child of the handle span")
}

func one(t *testing.T, rec interface {
	Ended() []sdktrace.ReadOnlySpan
}, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			found = append(found, s)
		}
	}
	require.Len(t, found, 1, "spans named %q", name)
	return found[0]
}

// waitOne waits for the span name to end (a consumer ends its spans
// after the handler returned).
func waitOne(t *testing.T, rec interface {
	Ended() []sdktrace.ReadOnlySpan
}, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, s := range rec.Ended() {
			if s.Name() == name {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "span %q", name)
	return one(t, rec, name)
}
