package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/eventbus"
)

// metrics collects the figures /metrics shows, in the Prometheus text
// exposition format, written by hand: a few counters and one histogram do
// not need a client library.
type metrics struct {
	mu        sync.Mutex
	requests  map[requestKey]int64
	durations map[string]*histogram // by route
	consumed  map[consumedKey]int64
	published int64 // events the relay published

	// gauges reads the figures of the running components (the production
	// one queries PostgreSQL). It is not called per scrape: the component
	// refreshGauges returns calls it every refresh interval and keeps the
	// text, which scrapes serve (gaugeText, under mu).
	gauges    func(ctx context.Context, w *gaugeWriter)
	gaugeText []byte
}

// defaultGaugeRefresh is how often the gauges are read, by default: a
// usual Prometheus scrape interval, so that an unauthenticated /metrics
// costs the database nothing however often it is called.
const defaultGaugeRefresh = 15 * time.Second

// gaugeTimeout bounds one reading of the gauges.
const gaugeTimeout = 5 * time.Second

// refreshGauges returns the background component that reads the gauges
// once at start (before the server accepts requests) and then every
// interval.
func (m *metrics) refreshGauges(interval time.Duration) component {
	started := make(chan struct{})
	return component{name: "metrics gauges", started: started, run: func(ctx context.Context) error {
		m.readGauges(ctx)
		close(started)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				m.readGauges(ctx)
			}
		}
	}}
}

// readGauges runs the gauge function once and caches what it wrote.
func (m *metrics) readGauges(ctx context.Context) {
	m.mu.Lock()
	gauges := m.gauges
	m.mu.Unlock()
	if gauges == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, gaugeTimeout)
	defer cancel()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	gauges(ctx, &gaugeWriter{w: bw, seen: map[string]bool{}})
	_ = bw.Flush()
	m.mu.Lock()
	m.gaugeText = buf.Bytes()
	m.mu.Unlock()
}

type requestKey struct {
	route  string
	status int
}

type consumedKey struct {
	handler string
	outcome string // "ok" or "error"
}

// Request duration buckets, in seconds.
var buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type histogram struct {
	counts []int64 // per bucket, not cumulative
	count  int64
	sum    float64
}

func newMetrics() *metrics {
	return &metrics{
		requests:  map[requestKey]int64{},
		durations: map[string]*histogram{},
		consumed:  map[consumedKey]int64{},
	}
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// instrument counts every request by route pattern (not by path, so that
// the number of series stays bounded) and status, and times it.
func (m *metrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			// http.ServeMux sets r.Pattern on the request it routes.
			route := cmp.Or(r.Pattern, "unmatched")
			status := cmp.Or(sw.status, http.StatusOK)
			m.observeRequest(route, status, time.Since(start))
		}()
		next.ServeHTTP(sw, r)
	})
}

func (m *metrics) observeRequest(route string, status int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[requestKey{route, status}]++
	h := m.durations[route]
	if h == nil {
		h = &histogram{counts: make([]int64, len(buckets))}
		m.durations[route] = h
	}
	s := d.Seconds()
	for i, b := range buckets {
		if s <= b {
			h.counts[i]++
			break
		}
	}
	h.count++
	h.sum += s
}

// consumer is a watermill middleware of the event router that counts the
// handled messages per handler and outcome (every attempt counts).
func (m *metrics) consumer(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		out, err := h(msg)
		outcome := "ok"
		if err != nil {
			outcome = "error"
		}
		m.mu.Lock()
		m.consumed[consumedKey{eventbus.HandlerName(msg.Context()), outcome}]++
		m.mu.Unlock()
		return out, err
	}
}

func (m *metrics) addPublished(n int) {
	m.mu.Lock()
	m.published += int64(n)
	m.mu.Unlock()
}

// gaugeWriter writes gauges, one family at a time.
type gaugeWriter struct {
	w    *bufio.Writer
	seen map[string]bool
}

// gauge writes one sample of a gauge; labels alternate names and values.
func (g *gaugeWriter) gauge(name, help string, value float64, labels ...string) {
	g.sample("gauge", name, help, value, labels...)
}

// counter writes one sample of a counter read from a component.
func (g *gaugeWriter) counter(name, help string, value float64, labels ...string) {
	g.sample("counter", name, help, value, labels...)
}

func (g *gaugeWriter) sample(kind, name, help string, value float64, labels ...string) {
	if !g.seen[name] {
		g.seen[name] = true
		fmt.Fprintf(g.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	}
	fmt.Fprintf(g.w, "%s%s %s\n", name, labelString(labels...), formatFloat(value))
}

func labelString(kv ...string) string {
	if len(kv) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// handler serves GET /metrics: the counters as they are and the gauges as
// last read by the refreshGauges component; a scrape runs no query.
func (m *metrics) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		bw := bufio.NewWriter(w)
		m.write(bw)
		_ = bw.Flush()
	})
}

func (m *metrics) write(w *bufio.Writer) {
	m.mu.Lock()
	fmt.Fprint(w, "# HELP authnotify_http_requests_total HTTP requests by route pattern and status.\n# TYPE authnotify_http_requests_total counter\n")
	keys := slices.SortedFunc(maps.Keys(m.requests), func(a, b requestKey) int {
		return cmp.Or(strings.Compare(a.route, b.route), a.status-b.status)
	})
	for _, k := range keys {
		fmt.Fprintf(w, "authnotify_http_requests_total%s %d\n", labelString("route", k.route, "status", strconv.Itoa(k.status)), m.requests[k])
	}
	fmt.Fprint(w, "# HELP authnotify_http_request_duration_seconds HTTP request durations by route pattern.\n# TYPE authnotify_http_request_duration_seconds histogram\n")
	for _, route := range slices.Sorted(maps.Keys(m.durations)) {
		h := m.durations[route]
		var cum int64
		for i, b := range buckets {
			cum += h.counts[i]
			fmt.Fprintf(w, "authnotify_http_request_duration_seconds_bucket%s %d\n", labelString("route", route, "le", formatFloat(b)), cum)
		}
		fmt.Fprintf(w, "authnotify_http_request_duration_seconds_bucket%s %d\n", labelString("route", route, "le", "+Inf"), h.count)
		fmt.Fprintf(w, "authnotify_http_request_duration_seconds_sum%s %s\n", labelString("route", route), formatFloat(h.sum))
		fmt.Fprintf(w, "authnotify_http_request_duration_seconds_count%s %d\n", labelString("route", route), h.count)
	}
	fmt.Fprint(w, "# HELP authnotify_events_consumed_total Event deliveries handled by consumer and outcome (every attempt counts).\n# TYPE authnotify_events_consumed_total counter\n")
	ckeys := slices.SortedFunc(maps.Keys(m.consumed), func(a, b consumedKey) int {
		return cmp.Or(strings.Compare(a.handler, b.handler), strings.Compare(a.outcome, b.outcome))
	})
	for _, k := range ckeys {
		fmt.Fprintf(w, "authnotify_events_consumed_total%s %d\n", labelString("handler", k.handler, "outcome", k.outcome), m.consumed[k])
	}
	fmt.Fprintf(w, "# HELP authnotify_outbox_published_total Events this process's outbox relay published.\n# TYPE authnotify_outbox_published_total counter\nauthnotify_outbox_published_total %d\n", m.published)
	_, _ = w.Write(m.gaugeText)
	m.mu.Unlock()
}
