package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	nports "github.com/dddkit/dddkit/examples/authnotify/notification/ports"
	"github.com/dddkit/dddkit/internal/telemetry/telemetrytest"
)

// One trace runs from the HTTP request that recorded an event to the
// email job it caused, in production mode (PostgreSQL, Kafka, River, a
// fake Resend): request span → command → save (the event's traceparent)
// → outbox write; the relay's send span links to that trace; the Kafka
// consumer's span, the River insert, the job's work and its call to
// Resend continue it. For register (the verification email) and verify
// (the welcome email). Not parallel: it installs the global tracer
// provider, as the application's main does.
func TestProductionTraceRunsFromRequestToEmailJob(t *testing.T) {
	rec := telemetrytest.Record(t)
	prev := otel.GetTextMapPropagator()
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTextMapPropagator(prev) })

	app, emails := startMode(t, "production", nil)
	const email, password = "curie@example.com", "correct horse battery"
	var reg struct {
		Data struct {
			RegistrationToken string `json:"registrationToken"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, app.base+"/auth/register", "", map[string]string{"email": email, "password": password}, &reg))
	verification := waitEmail(t, emails, email, "verification code")
	code := codePattern.FindStringSubmatch(verification.Text)
	require.NotNil(t, code)
	requireOneTrace(t, rec, "POST /auth/register", "auth.register_user")

	require.Equal(t, http.StatusOK, call(t, http.MethodPost, app.base+"/auth/verify", "",
		map[string]string{"email": email, "code": code[1], "registrationToken": reg.Data.RegistrationToken}, nil))
	waitEmail(t, emails, email, "Welcome")
	requireOneTrace(t, rec, "POST /auth/verify", "auth.verify_email")
}

// requireOneTrace finds the server span of route and checks that the
// spans of the way to the email job it caused are in its trace.
func requireOneTrace(t *testing.T, rec *telemetrytest.Recorder, route, command string) {
	t.Helper()
	var (
		req   sdktrace.ReadOnlySpan
		spans []sdktrace.ReadOnlySpan
	)
	// The job's span ends after the email was sent, the consumer's a
	// moment after the job was inserted: wait for both.
	require.Eventually(t, func() bool {
		req, spans = nil, nil
		for _, s := range rec.Ended() {
			if s.Name() == route && s.SpanKind() == trace.SpanKindServer {
				req = s
			}
		}
		if req == nil {
			return false
		}
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() == req.SpanContext().TraceID() {
				spans = append(spans, s)
			}
		}
		return find(spans, "river.work/notification.email") != nil && find(spans, "process ") != nil
	}, 30*time.Second, 20*time.Millisecond, "the spans of %s", route)
	names := make([]string, len(spans))
	for i, s := range spans {
		names[i] = s.Name()
	}
	t.Logf("trace of %s: %s", route, strings.Join(names, ", "))

	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
	}
	// ancestors: a span's chain of parents inside the trace, up to the
	// request's span.
	descends := func(s, from sdktrace.ReadOnlySpan) bool {
		for p := s; p != nil; p = byID[p.Parent().SpanID()] {
			if p.SpanContext().SpanID() == from.SpanContext().SpanID() {
				return true
			}
		}
		return false
	}
	cmd := find(spans, "command "+command)
	require.NotNil(t, cmd, "the command span is in the request's trace: %v", names)
	require.True(t, descends(cmd, req))
	save := find(spans, "save user")
	require.NotNil(t, save, "the save span: %v", names)
	require.True(t, descends(save, cmd))

	// The notification consumer's span (the expiry handler consumes the
	// same event in a consumer group of its own).
	i := slices.IndexFunc(spans, func(s sdktrace.ReadOnlySpan) bool {
		return strings.HasPrefix(s.Name(), "process ") && strings.HasSuffix(telemetrytest.Attr(s, "messaging.consumer.group.name"), nports.HandlerName)
	})
	require.GreaterOrEqual(t, i, 0, "the notification consumer's span: %v", names)
	process := spans[i]
	require.Equal(t, trace.SpanKindConsumer, process.SpanKind())
	require.Equal(t, "kafka", telemetrytest.Attr(process, "messaging.system"))
	require.Equal(t, "process", telemetrytest.Attr(process, "messaging.operation.type"))
	require.True(t, descends(process, save), "the Kafka consumer's span continues the save's (the event's traceparent)")
	require.NotEmpty(t, telemetrytest.Attr(process, "dddkit.correlation_id"))
	require.Equal(t, telemetrytest.Attr(req, "dddkit.correlation_id"), telemetrytest.Attr(process, "dddkit.correlation_id"))

	// The relay published the event in a batch span of its own trace,
	// linked to this one.
	var relayed bool
	for _, s := range rec.Ended() {
		if strings.HasPrefix(s.Name(), "send ") && s.SpanKind() == trace.SpanKindProducer && telemetrytest.Linked(s, req.SpanContext().TraceID()) {
			relayed = true
			require.Equal(t, "kafka", telemetrytest.Attr(s, "messaging.system"))
		}
	}
	require.True(t, relayed, "a relay span links to the request's trace")

	insert := find(spans, "river.insert_many")
	require.NotNil(t, insert, "the job insert is in the trace: %v", names)
	require.True(t, descends(insert, process), "the job is inserted by the consumer")
	work := find(spans, "river.work/notification.email")
	require.True(t, descends(work, insert), "the email job's span continues the trace of the request")
	resend := find(spans, "HTTP POST")
	require.NotNil(t, resend, "the call to Resend is in the trace: %v", names)
	require.Equal(t, trace.SpanKindClient, resend.SpanKind())
	require.True(t, descends(resend, work))
}

// find returns the first span whose name starts with prefix, or nil.
func find(spans []sdktrace.ReadOnlySpan, prefix string) sdktrace.ReadOnlySpan {
	i := slices.IndexFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return strings.HasPrefix(s.Name(), prefix) })
	if i < 0 {
		return nil
	}
	return spans[i]
}
