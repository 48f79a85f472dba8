package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
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

// TestMain runs the application itself instead of the tests when
// AUTHNOTIFY_AS_MAIN is 1: TestConsoleTraces starts it in a process of
// its own, so that the tracer provider it installs is its own.
func TestMain(m *testing.M) {
	if os.Getenv("AUTHNOTIFY_AS_MAIN") == "1" {
		os.Exit(realMain(nil, os.Getenv, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// Started with OTEL_TRACES_EXPORTER=console, the application prints its
// spans to stdout as JSON (flushed at the latest when it stops): here the
// HTTP request's and the command's of a registration, in one trace, with
// the service name of OTEL_SERVICE_NAME.
func TestConsoleTraces(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{
		"AUTHNOTIFY_AS_MAIN=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"HTTP_ADDR=127.0.0.1:0", "OTEL_TRACES_EXPORTER=console", "OTEL_SERVICE_NAME=authnotify-console-test",
	}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()

	base := ""
	banner := regexp.MustCompile(`running in EMBEDDED mode on (http://\S+),`)
	for base == "" {
		select {
		case line, ok := <-lines:
			require.True(t, ok, "the application exited before it listened: %s", stderr.String())
			if m := banner.FindStringSubmatch(line); m != nil {
				base = m[1]
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("the application did not start within 60s: %s", stderr.String())
		}
	}
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/auth/register", "",
		map[string]string{"email": "noether@example.com", "password": "correct horse battery"}, nil))
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))

	type span struct {
		Name        string
		SpanContext struct{ TraceID string }
		Resource    []struct {
			Key   string
			Value struct{ Value any }
		}
	}
	var spans []span
	timeout := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case line, ok := <-lines:
			if !ok {
				done = true
				break
			}
			var s span
			if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &s) == nil && s.Name != "" {
				spans = append(spans, s)
			}
		case <-timeout:
			t.Fatal("the application did not stop within 60s")
		}
	}
	require.NoError(t, <-exited, "clean exit; stderr: %s", stderr.String())
	exited <- nil // for the cleanup
	byName := map[string]span{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	req, ok := byName["POST /auth/register"]
	require.True(t, ok, "the request's span on stdout; got %d spans", len(spans))
	command, ok := byName["command auth.register_user"]
	require.True(t, ok, "the command's span on stdout")
	require.Equal(t, req.SpanContext.TraceID, command.SpanContext.TraceID)
	require.Contains(t, req.Resource, struct {
		Key   string
		Value struct{ Value any }
	}{Key: "service.name", Value: struct{ Value any }{Value: "authnotify-console-test"}})
}

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
		return find(spans, "river.work/notification.email") != nil && find(spans, "handle ") != nil
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

	// The notification consumer (HandleOnce on Kafka) applies events in
	// batches: its "process TOPIC" span is the batch's, in a trace of its
	// own linked to this one, and its "handle EVENT" span for this event
	// continues this trace (the expiry handler consumes the same event in
	// a consumer group of its own).
	i := slices.IndexFunc(spans, func(s sdktrace.ReadOnlySpan) bool {
		return strings.HasPrefix(s.Name(), "handle ") && strings.HasSuffix(telemetrytest.Attr(s, "dddkit.handler"), nports.HandlerName)
	})
	require.GreaterOrEqual(t, i, 0, "the notification consumer's handle span: %v", names)
	handle := spans[i]
	require.True(t, descends(handle, save), "the consumer's span continues the save's (the event's traceparent)")
	require.NotEmpty(t, telemetrytest.Attr(handle, "dddkit.correlation_id"))
	require.Equal(t, telemetrytest.Attr(req, "dddkit.correlation_id"), telemetrytest.Attr(handle, "dddkit.correlation_id"))
	var batch sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if strings.HasPrefix(s.Name(), "process ") && s.SpanKind() == trace.SpanKindConsumer &&
			strings.HasSuffix(telemetrytest.Attr(s, "messaging.consumer.group.name"), nports.HandlerName) &&
			telemetrytest.Linked(s, req.SpanContext().TraceID()) {
			batch = s
		}
	}
	require.NotNil(t, batch, "the notification consumer's batch span links to the request's trace")
	require.Equal(t, "kafka", telemetrytest.Attr(batch, "messaging.system"))
	require.Equal(t, "process", telemetrytest.Attr(batch, "messaging.operation.type"))
	require.True(t, telemetrytest.Linked(handle, batch.SpanContext().TraceID()), "the handle span links to its batch")

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
	require.True(t, descends(insert, handle), "the job is inserted by the consumer")
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

// Tracing is off unless an OTEL_* variable asks for it.
func TestTracingWanted(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x"}, false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none"}, false},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, false},
	} {
		require.Equal(t, c.want, tracingWanted(env(c.env)), "%v", c.env)
	}
}
