package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// /metrics is open to anyone who can reach the port, so a scrape must not
// cost a query: the gauges are read by a background component, at most
// once per refresh interval, however often /metrics is called.
func TestMetricsGaugesAreCached(t *testing.T) {
	t.Parallel()
	m := newMetrics()
	var calls atomic.Int64
	m.gauges = func(_ context.Context, g *gaugeWriter) {
		n := calls.Add(1)
		g.gauge("test_gauge_reads", "How often the gauges were read.", float64(n))
	}
	h := m.handler()
	scrape := func() string {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		require.Equal(t, 200, rec.Code)
		return rec.Body.String()
	}

	// No refresher running: scrapes read nothing.
	for range 50 {
		require.NotContains(t, scrape(), "test_gauge_reads")
	}
	require.Zero(t, calls.Load(), "a scrape must not run the gauge function")

	const interval = 50 * time.Millisecond
	ctx, cancel := context.WithCancel(t.Context())
	c := m.refreshGauges(interval)
	done := make(chan error, 1)
	go func() { done <- c.run(ctx) }()
	<-c.started
	require.EqualValues(t, 1, calls.Load(), "read once at start, before the server accepts requests")
	require.Contains(t, scrape(), "# TYPE test_gauge_reads gauge\ntest_gauge_reads 1\n")

	start := time.Now()
	const scrapes = 2000
	for range scrapes {
		scrape()
	}
	time.Sleep(3 * interval)
	elapsed := time.Since(start)
	cancel()
	require.NoError(t, <-done)
	got := calls.Load()
	require.LessOrEqual(t, got, 2+int64(elapsed/interval), "%d scrapes in %v ran the gauges %d times", scrapes, elapsed, got)
	require.GreaterOrEqual(t, got, int64(2), "the refresher reads them again every interval")
	require.Contains(t, scrape(), "test_gauge_reads ", "the last reading is served")
}

// The counters are still live: they cost no query.
func TestMetricsCountersAreLive(t *testing.T) {
	t.Parallel()
	m := newMetrics()
	m.addPublished(2)
	var b strings.Builder
	w := bufio.NewWriter(&b)
	m.write(w)
	require.NoError(t, w.Flush())
	require.Contains(t, b.String(), "authnotify_outbox_published_total 2\n")
	m.addPublished(1)
	rec := httptest.NewRecorder()
	m.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	require.Contains(t, string(body), "authnotify_outbox_published_total 3\n")
}
