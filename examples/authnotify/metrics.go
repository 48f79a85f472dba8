package main

import (
	"cmp"
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// /metrics serves, in the Prometheus text format, three kinds of series
// (see "Metrics" in README.md):
//
//   - the process's: the Go runtime and process collectors of
//     prometheus/client_golang, and dddkit's metrics (dddkit_...), which
//     the library records through the OpenTelemetry metrics API and the
//     OpenTelemetry Prometheus exporter turns into Prometheus series.
//     dddkit uses the global MeterProvider, so these are per process:
//     processRegistry installs it once.
//   - the application's own (authnotify_...): HTTP requests, counted
//     live, and the email job figures, read by a background component
//     (the production one queries PostgreSQL) every GaugeRefresh and
//     served from that reading, so that a scrape runs no query.

// processMetrics is the registry of the process-wide series; the first
// call installs the OpenTelemetry SDK that feeds dddkit's metrics into it
// as the global MeterProvider.
var processMetrics = sync.OnceValues(func() (*prometheus.Registry, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, err
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, err
	}
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		return nil, err
	}
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter)))
	return reg, nil
})

// metrics are the application's own series.
type metrics struct {
	process   *prometheus.Registry
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec

	mu sync.Mutex
	// gauges reads the figures of the running components (the production
	// one queries PostgreSQL). It is not called per scrape: the component
	// refreshGauges returns calls it every refresh interval and keeps the
	// samples, which scrapes serve (cached, under mu).
	gauges func(ctx context.Context, w *gaugeWriter)
	cached []prometheus.Metric
}

// defaultGaugeRefresh is how often the gauges are read, by default: a
// usual Prometheus scrape interval, so that an unauthenticated /metrics
// costs the database nothing however often it is called.
const defaultGaugeRefresh = 15 * time.Second

// gaugeTimeout bounds one reading of the gauges.
const gaugeTimeout = 5 * time.Second

// Request duration buckets, in seconds.
var buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

func newMetrics() (*metrics, error) {
	process, err := processMetrics()
	if err != nil {
		return nil, err
	}
	m := &metrics{
		process:  process,
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "authnotify_http_requests_total",
			Help: "HTTP requests by route pattern and status.",
		}, []string{"route", "status"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "authnotify_http_request_duration_seconds",
			Help:    "HTTP request durations by route pattern.",
			Buckets: buckets,
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.durations, cachedCollector{m}} {
		if err := m.registry.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

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
	w := &gaugeWriter{descs: map[string]*prometheus.Desc{}}
	gauges(ctx, w)
	m.mu.Lock()
	m.cached = w.samples
	m.mu.Unlock()
}

// cachedCollector serves the last reading of the gauges. It is an
// unchecked collector (Describe sends nothing): the series it has depend
// on the reading.
type cachedCollector struct{ m *metrics }

func (cachedCollector) Describe(chan<- *prometheus.Desc) {}

func (c cachedCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.mu.Lock()
	samples := c.m.cached
	c.m.mu.Unlock()
	for _, s := range samples {
		ch <- s
	}
}

// gaugeWriter collects the samples of one reading of the gauges.
type gaugeWriter struct {
	descs   map[string]*prometheus.Desc
	samples []prometheus.Metric
}

// gauge writes one sample of a gauge; labels alternate names and values.
func (g *gaugeWriter) gauge(name, help string, value float64, labels ...string) {
	g.sample(prometheus.GaugeValue, name, help, value, labels...)
}

// counter writes one sample of a counter read from a component.
func (g *gaugeWriter) counter(name, help string, value float64, labels ...string) {
	g.sample(prometheus.CounterValue, name, help, value, labels...)
}

func (g *gaugeWriter) sample(kind prometheus.ValueType, name, help string, value float64, labels ...string) {
	var names, values []string
	for i := 0; i+1 < len(labels); i += 2 {
		names, values = append(names, labels[i]), append(values, labels[i+1])
	}
	d, ok := g.descs[name]
	if !ok {
		d = prometheus.NewDesc(name, help, names, nil)
		g.descs[name] = d
	}
	s, err := prometheus.NewConstMetric(d, kind, value, values...)
	if err != nil {
		s = prometheus.NewInvalidMetric(d, err)
	}
	g.samples = append(g.samples, s)
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
			m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
			m.durations.WithLabelValues(route).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// handler serves GET /metrics: the process's series and the
// application's, the gauges as last read by the refreshGauges component;
// a scrape runs no query.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(prometheus.Gatherers{m.process, m.registry}, promhttp.HandlerOpts{})
}
