// Package telemetry is dddkit's one place for OpenTelemetry: the tracer
// and meter every package instruments with, and the attribute keys they
// share. The library depends only on the OpenTelemetry API; it uses the
// global providers (otel.SetTracerProvider, otel.SetMeterProvider), which
// are no-ops until an application installs an SDK. The instruments are
// created through the global delegates, so an SDK installed after a
// package was loaded still receives them.
//
// Spans: each package keeps its span logic in a trace.go of its own and
// starts spans through [Active], which costs one pointer comparison while
// no tracer provider is installed (or a no-op one is): tracing that is
// off costs close to nothing on the hot paths (a bus dispatch, a relay
// batch).
//
// The trace context travels inside the event: [Metadata] stamps the span
// of ctx on the metadata events are recorded with (the wire contract's
// ce_traceparent and ce_tracestate), and [Parent] turns an event's
// metadata back into the parent of the spans that handle it.
package telemetry

import (
	"context"
	"reflect"
	"sync/atomic"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dddkit/dddkit/aggregate"
)

// ScopeName is the instrumentation scope of every dddkit span and metric.
const ScopeName = "github.com/dddkit/dddkit"

// Tracer returns dddkit's tracer from the global tracer provider.
func Tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(ScopeName) }

// Meter returns dddkit's meter from the global meter provider.
func Meter() metric.Meter { return otel.GetMeterProvider().Meter(ScopeName) }

// Attribute keys dddkit sets on its spans (and, where the cardinality
// allows, on its metrics). Messaging attributes follow the OpenTelemetry
// semantic conventions.
const (
	AttrCorrelationID = attribute.Key("dddkit.correlation_id")
	AttrCausationID   = attribute.Key("dddkit.causation_id")
	AttrEventID       = attribute.Key("dddkit.event.id")
	AttrEventName     = attribute.Key("dddkit.event.name")
	AttrAggregateType = attribute.Key("dddkit.aggregate.type")
	AttrAggregateID   = attribute.Key("dddkit.aggregate.id")
	AttrCommand       = attribute.Key("dddkit.command")
	AttrHandler       = attribute.Key("dddkit.handler")

	// AttrQuery is the name of a dispatched query.
	AttrQuery = attribute.Key("dddkit.query")
	// AttrAggregateVersion is the version an aggregate was saved at.
	AttrAggregateVersion = attribute.Key("dddkit.aggregate.version")
	// AttrEventCount is the number of events a save or an outbox write
	// stored.
	AttrEventCount = attribute.Key("dddkit.event.count")
	// AttrProjection is the name of a projection.
	AttrProjection = attribute.Key("dddkit.projection")

	// The OpenTelemetry messaging semantic conventions (v1.40).
	AttrMessagingSystem        = attribute.Key("messaging.system")
	AttrMessagingDestination   = attribute.Key("messaging.destination.name")
	AttrMessagingOperationType = attribute.Key("messaging.operation.type")
	AttrMessagingOperationName = attribute.Key("messaging.operation.name")
	AttrMessagingBatchCount    = attribute.Key("messaging.batch.message_count")
	AttrMessagingConsumerGroup = attribute.Key("messaging.consumer.group.name")
	AttrMessagingMessageID     = attribute.Key("messaging.message.id")
	AttrMessagingPartition     = attribute.Key("messaging.destination.partition.id")
)

// Values of [AttrMessagingOperationType].
const (
	OpCreate  = "create"
	OpSend    = "send"
	OpProcess = "process"
)

// SystemNamer is implemented by publishers and transports that know the
// messaging system they talk to (the kafka package's say "kafka"); the
// spans of the relay and the consumers use it for messaging.system.
type SystemNamer interface {
	MessagingSystem() string
}

// System returns the messaging system of v (a publisher, a transport):
// its [SystemNamer] answer, or "" when it does not say.
func System(v any) string {
	if s, ok := v.(SystemNamer); ok {
		return s.MessagingSystem()
	}
	return ""
}

// noSpan is what the span starters return while tracing is off: a span
// that records nothing (boxed once, so returning it allocates nothing).
var noSpan trace.Span = noop.Span{}

// NoSpan returns the non-recording span the starters return while
// tracing is off.
func NoSpan() trace.Span { return noSpan }

// defaultProvider is the global tracer provider as it is before an
// application installs one: otel.SetTracerProvider replaces it.
var defaultProvider = otel.GetTracerProvider()

type cachedTracer struct {
	tp         trace.TracerProvider
	comparable bool // tp can be compared with ==
	t          trace.Tracer
}

var cache atomic.Pointer[cachedTracer]

// Active returns dddkit's tracer and true when spans can be recorded:
// when the application installed a tracer provider that is not a no-op
// one. While nothing (or a noop.TracerProvider) is installed it returns
// false, and the caller starts no span: the cost of tracing that is off
// is one atomic load and a comparison. The tracer is cached per provider,
// so a provider swapped in later (tests do) is used from then on.
func Active() (trace.Tracer, bool) {
	tp := otel.GetTracerProvider()
	if tp == defaultProvider { // small enough to be inlined: the cost of tracing off
		return nil, false
	}
	return active(tp)
}

func active(tp trace.TracerProvider) (trace.Tracer, bool) {
	if c := cache.Load(); c != nil && c.comparable && c.tp == tp {
		return c.t, c.t != nil
	}
	c := &cachedTracer{tp: tp, comparable: reflect.TypeOf(tp).Comparable()}
	if _, isNoop := tp.(noop.TracerProvider); !isNoop {
		c.t = tp.Tracer(ScopeName)
	}
	cache.Store(c)
	return c.t, c.t != nil
}

// End ends span, recording err (when not nil) as its error status.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// MetadataAttrs returns the correlation and causation IDs of md as span
// attributes (those that are set).
func MetadataAttrs(md aggregate.Metadata) []attribute.KeyValue {
	out := make([]attribute.KeyValue, 0, 2)
	if md.CorrelationID != "" {
		out = append(out, AttrCorrelationID.String(md.CorrelationID))
	}
	if md.CausationID != "" {
		out = append(out, AttrCausationID.String(md.CausationID))
	}
	return out
}

// Metadata returns the metadata of ctx ([aggregate.MetadataFromContext])
// with the trace context of ctx's span, when it has a valid one, in
// place of the one the metadata carried: what the events recorded while
// handling ctx are stamped with, so that their consumers continue this
// trace. Without a span in ctx the metadata is returned as it is (an
// incoming trace context is passed on even while tracing is off here).
func Metadata(ctx context.Context) aggregate.Metadata {
	md := aggregate.MetadataFromContext(ctx)
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return md
	}
	return WithTraceContext(md, sc)
}

// TraceContext returns the W3C traceparent and tracestate of ctx's span,
// and false when ctx has no valid span context.
func TraceContext(ctx context.Context) (traceParent, traceState string, ok bool) {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return "", "", false
	}
	md := WithTraceContext(aggregate.Metadata{}, sc)
	return md.TraceParent, md.TraceState, true
}

// WithTraceContext returns md carrying sc as its W3C trace context
// (TraceParent, TraceState).
func WithTraceContext(md aggregate.Metadata, sc trace.SpanContext) aggregate.Metadata {
	c := mdCarrier{md: &md}
	md.TraceParent, md.TraceState = "", ""
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), c)
	return md
}

// SpanContext returns the span context md's TraceParent and TraceState
// encode; it is not valid when md has none (or a malformed one).
func SpanContext(md aggregate.Metadata) trace.SpanContext {
	if md.TraceParent == "" {
		return trace.SpanContext{}
	}
	ctx := propagation.TraceContext{}.Extract(context.Background(), mdCarrier{md: &md})
	return trace.SpanContextFromContext(ctx)
}

// Parent returns ctx with the span context of md as its remote parent,
// for a span that handles the event md belongs to: the handler's span
// continues the trace of the request that recorded the event. ctx is
// returned as it is when md carries no trace context.
func Parent(ctx context.Context, md aggregate.Metadata) context.Context {
	sc := SpanContext(md)
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithRemoteSpanContext(ctx, sc)
}

// Link returns a span link to the trace context md carries, and false
// when it carries none.
func Link(md aggregate.Metadata) (trace.Link, bool) {
	sc := SpanContext(md)
	return trace.Link{SpanContext: sc}, sc.IsValid()
}

// mdCarrier is a propagation.TextMapCarrier over the trace fields of a
// Metadata.
type mdCarrier struct{ md *aggregate.Metadata }

func (c mdCarrier) Get(key string) string {
	switch key {
	case "traceparent":
		return c.md.TraceParent
	case "tracestate":
		return c.md.TraceState
	}
	return ""
}

func (c mdCarrier) Set(key, value string) {
	switch key {
	case "traceparent":
		c.md.TraceParent = value
	case "tracestate":
		c.md.TraceState = value
	}
}

func (c mdCarrier) Keys() []string { return []string{"traceparent", "tracestate"} }
