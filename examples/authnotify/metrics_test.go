package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cqrs"
)

// /metrics is open to anyone who can reach the port, so a scrape must not
// cost a query: the gauges are read by a background component, at most
// once per refresh interval, however often /metrics is called.
func TestMetricsGaugesAreCached(t *testing.T) {
	t.Parallel()
	m, err := newMetrics()
	require.NoError(t, err)
	var calls atomic.Int64
	m.gauges = func(_ context.Context, g *gaugeWriter) {
		n := calls.Add(1)
		g.gauge("test_gauge_reads", "How often the gauges were read.", float64(n))
		g.counter("test_things_total", "Things by kind.", 2, "kind", "a")
		g.counter("test_things_total", "Things by kind.", 3, "kind", "b")
	}
	h := m.handler()

	// No refresher running: scrapes read nothing.
	for range 50 {
		require.NotContains(t, scrapeHandler(t, h), "test_gauge_reads")
	}
	require.Zero(t, calls.Load(), "a scrape must not run the gauge function")

	ctx, cancel := context.WithCancel(t.Context())
	c := m.refreshGauges(time.Hour)
	done := make(chan error, 1)
	go func() { done <- c.run(ctx) }()
	<-c.started
	require.EqualValues(t, 1, calls.Load(), "read once at start, before the server accepts requests")
	body := scrapeHandler(t, h)
	require.Contains(t, body, "# TYPE test_gauge_reads gauge\ntest_gauge_reads 1\n")
	require.Contains(t, body, "# TYPE test_things_total counter\ntest_things_total{kind=\"a\"} 2\ntest_things_total{kind=\"b\"} 3\n")

	for range 100 {
		require.Contains(t, scrapeHandler(t, h), "test_gauge_reads 1\n", "the reading at start is served")
	}
	require.EqualValues(t, 1, calls.Load(), "100 scrapes ran the gauge function no more")
	cancel()
	require.NoError(t, <-done)
}

// The refresher reads the gauges again every interval.
func TestMetricsGaugesAreRefreshed(t *testing.T) {
	t.Parallel()
	m, err := newMetrics()
	require.NoError(t, err)
	var calls atomic.Int64
	m.gauges = func(_ context.Context, g *gaugeWriter) {
		g.gauge("test_gauge_reads", "How often the gauges were read.", float64(calls.Add(1)))
	}
	ctx, cancel := context.WithCancel(t.Context())
	c := m.refreshGauges(time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- c.run(ctx) }()
	require.Eventually(t, func() bool { return calls.Load() >= 3 }, 10*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.Contains(t, scrapeHandler(t, m.handler()), fmt.Sprintf("test_gauge_reads %d\n", calls.Load()), "the last reading is served")
}

type pingCommand struct{}

// The process's series: the Go runtime's and process's collectors and
// dddkit's metrics, through the OpenTelemetry Prometheus exporter; and
// the application's own.
func TestMetricsServeRuntimeAndDddkitSeries(t *testing.T) {
	t.Parallel()
	m, err := newMetrics()
	require.NoError(t, err)
	bus, err := cqrs.New(&cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Metrics()}})
	require.NoError(t, err)
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, pingCommand) (struct{}, error) { return struct{}{}, nil }))
	require.NoError(t, cqrs.Exec(t.Context(), bus, pingCommand{}))
	require.NoError(t, cqrs.Exec(t.Context(), bus, pingCommand{}))
	rec := httptest.NewRecorder()
	m.instrument(http.NotFoundHandler()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nowhere", nil))

	body := scrapeHandler(t, m.handler())
	for _, want := range []string{
		"# TYPE go_goroutines gauge\n",
		"# TYPE process_cpu_seconds_total counter\n",
		"# TYPE dddkit_bus_dispatch_duration_seconds histogram\n",
		`dddkit_bus_dispatch_duration_seconds_count{dddkit_kind="command",dddkit_name="main.pingCommand",dddkit_outcome="ok"} 2` + "\n",
		`authnotify_http_requests_total{route="unmatched",status="404"} 1` + "\n",
		"# TYPE authnotify_http_request_duration_seconds histogram\n",
	} {
		require.Contains(t, body, want)
	}
	require.False(t, strings.Contains(body, "otel_scope_name"), "no scope labels on the series")
}

func scrapeHandler(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Contains(t, rec.Header().Get("Content-Type"), "text/plain")
	return rec.Body.String()
}
