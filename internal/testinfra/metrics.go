package testinfra

import (
	"context"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// Metrics is an OpenTelemetry SDK meter provider whose measurements a
// test reads on demand (a manual reader).
type Metrics struct {
	reader   *sdkmetric.ManualReader
	Provider *sdkmetric.MeterProvider
}

// NewMetrics returns a meter provider of the test's own; it is shut down
// when the test ends.
func NewMetrics(t testing.TB) *Metrics {
	t.Helper()
	m := newMetrics()
	t.Cleanup(func() { _ = m.Provider.Shutdown(context.Background()) })
	return m
}

func newMetrics() *Metrics {
	r := sdkmetric.NewManualReader()
	return &Metrics{reader: r, Provider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))}
}

var (
	globalOnce    sync.Once
	globalMetrics *Metrics
)

// GlobalMetrics installs, once per test binary, an SDK meter provider as
// the global one (otel.SetMeterProvider) and returns it: for the
// instruments that dddkit makes through the global delegate. Tests share
// it, so each test looks only at the series its own (unique) attribute
// values label.
func GlobalMetrics() *Metrics {
	globalOnce.Do(func() {
		globalMetrics = newMetrics()
		otel.SetMeterProvider(globalMetrics.Provider)
	})
	return globalMetrics
}

// Meter returns a meter of the provider.
func (m *Metrics) Meter() metric.Meter { return m.Provider.Meter("test") }

// Point is one data point as a test checks it: a counter's or gauge's
// value, or a histogram's count and sum.
type Point struct {
	Attrs attribute.Set
	Value float64 // counter or gauge value; histogram count
	Sum   float64 // histogram sum
}

// Collect reads every data point of the metric name whose attributes
// include all of attrs.
func (m *Metrics) Collect(t testing.TB, name string, attrs ...attribute.KeyValue) []Point {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := m.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("collect metrics: %v", err)
	}
	var out []Point
	match := func(s attribute.Set) bool {
		for _, kv := range attrs {
			if v, ok := s.Value(kv.Key); !ok || v != kv.Value {
				return false
			}
		}
		return true
	}
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			if md.Name != name {
				continue
			}
			switch d := md.Data.(type) {
			case metricdata.Sum[int64]:
				out = appendPoints(out, d.DataPoints, match)
			case metricdata.Sum[float64]:
				out = appendPoints(out, d.DataPoints, match)
			case metricdata.Gauge[int64]:
				out = appendPoints(out, d.DataPoints, match)
			case metricdata.Gauge[float64]:
				out = appendPoints(out, d.DataPoints, match)
			case metricdata.Histogram[int64]:
				out = appendHistogram(out, d.DataPoints, match)
			case metricdata.Histogram[float64]:
				out = appendHistogram(out, d.DataPoints, match)
			default:
				t.Fatalf("metric %s: unexpected data %T", name, md.Data)
			}
		}
	}
	return out
}

// appendPoints appends the counter or gauge points of dps that match.
func appendPoints[N int64 | float64](out []Point, dps []metricdata.DataPoint[N], match func(attribute.Set) bool) []Point {
	for _, p := range dps {
		if match(p.Attributes) {
			out = append(out, Point{Attrs: p.Attributes, Value: float64(p.Value)})
		}
	}
	return out
}

// appendHistogram appends the histogram points of dps that match: their
// count as Value, and their sum.
func appendHistogram[N int64 | float64](out []Point, dps []metricdata.HistogramDataPoint[N], match func(attribute.Set) bool) []Point {
	for _, p := range dps {
		if match(p.Attributes) {
			out = append(out, Point{Attrs: p.Attributes, Value: float64(p.Count), Sum: float64(p.Sum)})
		}
	}
	return out
}

// Value returns the sum of the values (counts, for a histogram) of the
// data points Collect returns, and whether there was any.
func (m *Metrics) Value(t testing.TB, name string, attrs ...attribute.KeyValue) (float64, bool) {
	t.Helper()
	pts := m.Collect(t, name, attrs...)
	var v float64
	for _, p := range pts {
		v += p.Value
	}
	return v, len(pts) > 0
}
