package eventbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/telemetry/telemetrytest"
)

// A batch of events recorded by two requests: the batch's consumer span
// links to both traces, and each event's handler span continues the
// trace of the request that recorded it, linked to the batch. (Not
// parallel: it installs the global tracer provider.)
func TestBatchHandlerSpansContinueEachEventsTrace(t *testing.T) {
	rec := telemetrytest.Record(t)
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:test:trace"})
	require.NoError(t, eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user")))
	seen := map[string]trace.SpanContext{}
	var msgs []*message.Message
	requests := map[string]trace.SpanContext{}
	for _, user := range []string{"u1", "u2"} {
		_, req := rec.Tracer().Start(t.Context(), "request "+user)
		req.End()
		requests[user] = req.SpanContext()
		md := aggregate.Metadata{CorrelationID: "corr-" + user}
		msg, err := reg.Encode(aggregate.Envelope{
			ID: "ev-" + user, Name: UserRegistered{}.EventName(), AggregateType: "user", AggregateID: user, Version: 1,
			OccurredAt: time.Now(), Payload: UserRegistered{Email: user + "@example.com"},
			Metadata: withTrace(md, req.SpanContext()),
		})
		require.NoError(t, err)
		msgs = append(msgs, msg)
	}
	tr := &batchTransport{batch: msgs, handled: make(chan bool, 1)}
	r, err := eventbus.NewRouter(tr, reg, &eventbus.RouterConfig{Logger: testLogger()})
	require.NoError(t, err)
	require.NoError(t, eventbus.HandleOnce(r, "welcome", eventbus.NewMemoryInbox(),
		func(ctx context.Context, _ UserRegistered, env aggregate.Envelope) error {
			seen[env.AggregateID] = trace.SpanContextFromContext(ctx)
			return nil
		}))
	runDone := make(chan error, 1)
	go func() { runDone <- r.Run(context.Background()) }()
	require.True(t, <-tr.handled, "the batch was not handled to the end")
	require.NoError(t, r.Close())
	require.NoError(t, <-runDone)
	require.Equal(t, []int{1}, tr.done)

	batch := telemetrytest.Named(rec, "process user.events")
	require.Len(t, batch, 1)
	require.Equal(t, trace.SpanKindConsumer, batch[0].SpanKind())
	require.Equal(t, "2", telemetrytest.Attr(batch[0], "messaging.batch.message_count"))
	handles := telemetrytest.Named(rec, "handle auth.user_registered")
	require.Len(t, handles, 2)
	for user, req := range requests {
		require.True(t, telemetrytest.Linked(batch[0], req.TraceID()), "the batch links to the trace of %s", user)
		require.Equal(t, req.TraceID(), seen[user].TraceID(), "the handler of %s's event runs in its request's trace", user)
	}
	for _, h := range handles {
		req := requests[telemetrytest.Attr(h, "dddkit.aggregate.id")]
		require.Equal(t, req.SpanID(), h.Parent().SpanID(), "a child of the span that recorded the event")
		require.True(t, telemetrytest.Linked(h, batch[0].SpanContext().TraceID()), "linked to the batch")
		require.Equal(t, "corr-"+telemetrytest.Attr(h, "dddkit.aggregate.id"), telemetrytest.Attr(h, "dddkit.correlation_id"))
	}
}

// Tracing off (no tracer provider): no span is started, and an event's
// trace context passes through the handler to what it records.
func TestTraceContextPassesThroughWhileTracingIsOff(t *testing.T) {
	telemetrytest.Use(t, "off")
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:test:trace"})
	require.NoError(t, eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user")))
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Persistent: true})
	defer transport.Close()
	pub, err := eventbus.NewPublisher(transport.Publisher(), reg)
	require.NoError(t, err)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	require.NoError(t, pub.Publish(aggregate.ContextWithMetadata(t.Context(), aggregate.Metadata{TraceParent: tp}), aggregate.Envelope{
		ID: "ev-1", Name: UserRegistered{}.EventName(), AggregateType: "user", AggregateID: "u1", Version: 1, Payload: UserRegistered{Email: "a@example.com"},
	}))
	router, err := eventbus.NewRouter(transport, reg, &eventbus.RouterConfig{Logger: testLogger()})
	require.NoError(t, err)
	got := make(chan aggregate.Metadata, 1)
	require.NoError(t, eventbus.Handle(router, "h", func(ctx context.Context, _ UserRegistered, _ aggregate.Envelope) error {
		require.False(t, trace.SpanContextFromContext(ctx).IsValid(), "no span while tracing is off")
		got <- aggregate.MetadataFromContext(ctx)
		return nil
	}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- router.Run(ctx) }()
	defer func() { cancel(); <-runDone }()
	select {
	case md := <-got:
		require.Equal(t, tp, md.TraceParent, "the handler's context carries the event's trace context on")
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not run")
	}
}

func withTrace(md aggregate.Metadata, sc trace.SpanContext) aggregate.Metadata {
	md.TraceParent = "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"
	return md
}
