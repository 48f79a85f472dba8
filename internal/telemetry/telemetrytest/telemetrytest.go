// Package telemetrytest records the spans dddkit's packages start, for
// their tests: it installs an OpenTelemetry SDK tracer provider that
// samples everything as the global one.
package telemetrytest

import (
	"context"
	"testing"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Recorder is what [Record] returns: the spans that ended, and a tracer
// for the test's own spans.
type Recorder struct {
	*tracetest.SpanRecorder
	tp *sdktrace.TracerProvider
}

// Tracer returns a tracer of the recording provider.
func (r *Recorder) Tracer() trace.Tracer { return r.tp.Tracer("test") }

// Record installs a global tracer provider that records every span
// until t ends (then none again), and returns the recorder. The global
// provider is process-wide: a test that calls Record must not run in
// parallel with other tests that do.
func Record(t testing.TB) *Recorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(rec))
	otel.SetTracerProvider(tp)
	t.Cleanup(func() {
		otel.SetTracerProvider(defaultProvider)
		_ = tp.Shutdown(context.Background())
	})
	return &Recorder{SpanRecorder: rec, tp: tp}
}

// Named returns the ended spans of rec whose name is name.
func Named(rec *Recorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// Attr returns the value of the attribute key of s as a string ("" when
// s has none).
func Attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// Linked reports whether s has a link to a span of trace id.
func Linked(s sdktrace.ReadOnlySpan, id trace.TraceID) bool {
	for _, l := range s.Links() {
		if l.SpanContext.TraceID() == id {
			return true
		}
	}
	return false
}

// SpanContext returns the span context an event's metadata carries.
func SpanContext(md aggregate.Metadata) trace.SpanContext { return telemetry.SpanContext(md) }

// defaultProvider is the global tracer provider as the process started:
// none installed.
var defaultProvider = otel.GetTracerProvider()

// Modes are the tracing set-ups the benchmarks compare, in the order
// they run: "off" (no tracer provider installed, as in an application
// that does not trace), "noop" (a noop.TracerProvider installed) and
// "sdk" (the OpenTelemetry SDK sampling every span, exported in batches
// to an exporter that drops them).
var Modes = []string{"off", "noop", "sdk"}

// Use installs the global tracer provider of mode (one of [Modes]) until
// tb ends; then none again. Not for parallel tests.
func Use(tb testing.TB, mode string) {
	tb.Helper()
	restore := func() {
		if otel.GetTracerProvider() != defaultProvider {
			otel.SetTracerProvider(defaultProvider)
		}
	}
	switch mode {
	case "off":
		restore()
	case "noop":
		otel.SetTracerProvider(noop.NewTracerProvider())
	case "sdk":
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		otel.SetTracerProvider(tp)
		tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	default:
		tb.Fatalf("telemetrytest: unknown mode %q", mode)
	}
	tb.Cleanup(restore)
}
