package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/riverqueue/rivercontrib/otelriver"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/dddkit/dddkit/aggregate"
)

// Tracing: dddkit uses the OpenTelemetry API only; this file installs
// the SDK, configured by the standard OTEL_* variables, and instruments
// the example's own edges: HTTP (otelhttp), River jobs (otelriver) and
// the calls to Resend.
//
//	OTEL_TRACES_EXPORTER=otlp|console|none   where spans go
//	OTEL_EXPORTER_OTLP_ENDPOINT              the collector (OTLP; implies otlp)
//	OTEL_SERVICE_NAME                        default "authnotify"
//
// With none of them set tracing is off: no SDK is installed, and dddkit
// starts no spans at all.

// tracingWanted reports whether the environment asks for traces.
func tracingWanted(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch exp := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); exp {
	case "":
		return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return exp != "none"
	}
}

// setupTracing installs the OpenTelemetry SDK as the global tracer
// provider when the environment asks for traces (see tracingWanted),
// with the exporter autoexport builds from the OTEL_* variables and the
// W3C trace-context propagator. The returned function flushes and stops
// it (a no-op when tracing is off). The exporter reads the process's
// environment (os.Getenv), getenv only decides whether to build one.
func setupTracing(ctx context.Context, getenv func(string) string) (shutdown func(context.Context) error, err error) {
	off := func(context.Context) error { return nil }
	if !tracingWanted(getenv) {
		return off, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return off, fmt.Errorf("OpenTelemetry (OTEL_TRACES_EXPORTER): %w", err)
	}
	if autoexport.IsNoneSpanExporter(exp) {
		return off, nil
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "authnotify")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES override
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		return off, fmt.Errorf("OpenTelemetry resource (OTEL_RESOURCE_ATTRIBUTES): %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)) // the sampler honours OTEL_TRACES_SAMPLER
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown, nil
}

// traceHTTP starts a server span for every request but the probes and
// the metrics scrape (otelhttp, continuing a caller's traceparent), named
// by the route ("POST /auth/register", once the mux routed it: next must
// pass the request on unchanged) and carrying the request's correlation
// ID.
func traceHTTP(next http.Handler) http.Handler {
	named := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span := trace.SpanFromContext(r.Context())
		if id := aggregate.MetadataFromContext(r.Context()).CorrelationID; id != "" && span.IsRecording() {
			span.SetAttributes(attribute.String("dddkit.correlation_id", id))
		}
		next.ServeHTTP(w, r)
		if r.Pattern != "" && span.IsRecording() {
			span.SetAttributes(attribute.String("http.route", r.Pattern))
		}
	})
	return otelhttp.NewHandler(named, "authnotify",
		otelhttp.WithFilter(func(r *http.Request) bool {
			switch r.URL.Path {
			case "/metrics", "/healthz", "/readyz":
				return false
			}
			return true
		}),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" { // otelhttp names the span again once the mux routed the request
				return r.Pattern
			}
			return "HTTP " + r.Method
		}))
}

// tracedClient returns a copy of hc (nil: a new client) whose requests
// get client spans and carry the trace context (the calls to Resend).
func tracedClient(hc *http.Client) *http.Client {
	c := &http.Client{}
	if hc != nil {
		*c = *hc
	}
	next := c.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	c.Transport = otelhttp.NewTransport(next)
	return c
}

// riverMiddleware is River's tracing: otelriver's spans for inserts and
// work, with the trace context carried in the job's metadata. otelriver
// only links a job's work span to the span that inserted it; jobTrace,
// outside it, makes the inserting span the parent, so that the email job
// runs in the trace of the request that caused it.
func riverMiddleware() []rivertype.Middleware {
	return []rivertype.Middleware{
		&jobTrace{},
		otelriver.NewMiddleware(&otelriver.MiddlewareConfig{EnableTracePropagation: true, EnableWorkSpanJobKindSuffix: true}),
	}
}

// jobTrace continues, in a job's work, the trace whose context otelriver
// stored in the job's metadata when the job was inserted.
type jobTrace struct{ river.MiddlewareDefaults }

func (*jobTrace) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	if len(job.Metadata) > 0 {
		carrier := propagation.MapCarrier{}
		var meta map[string]any
		if json.Unmarshal(job.Metadata, &meta) == nil {
			for _, k := range []string{"traceparent", "tracestate"} {
				if s, ok := meta[k].(string); ok {
					carrier[k] = s
				}
			}
			if sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), carrier)); sc.IsValid() {
				ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			}
		}
	}
	return doInner(ctx)
}
