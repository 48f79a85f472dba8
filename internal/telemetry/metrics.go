package telemetry

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// This file holds what dddkit's metrics share: the attribute keys of
// their labels and the histogram buckets. Each package creates its
// instruments in a metrics.go of its own, from [Meter].

// Metric attribute keys (besides those in telemetry.go). Their values
// are bounded: names of commands, handlers, topics, projections and a
// handful of outcomes, never IDs.
const (
	// AttrOutcome is how a dispatch, a publish attempt or a delivery
	// ended; each instrument documents its values.
	AttrOutcome = attribute.Key("dddkit.outcome")
	// AttrKind is "command" or "query".
	AttrKind = attribute.Key("dddkit.kind")
	// AttrName is the stable name of a command or query.
	AttrName = attribute.Key("dddkit.name")
)

// DurationBuckets are the bucket boundaries, in seconds, of dddkit's
// latency histograms: 100µs to 10s, for in-process dispatches as well as
// broker round trips.
var DurationBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// SizeBuckets are the bucket boundaries of dddkit's batch-size
// histograms, 1 to 10,000.
var SizeBuckets = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}

// Attrs returns a measurement option with the attribute set kvs, to
// compute once and reuse: a metric.WithAttributes per measurement costs
// an allocation.
func Attrs(kvs ...attribute.KeyValue) metric.MeasurementOption {
	return metric.WithAttributeSet(attribute.NewSet(kvs...))
}

// Must returns the instrument of a constructor call, handing its error
// (an invalid name or unit) to the global error handler: the API returns
// a working instrument with the error.
func Must[I any](inst I, err error) I {
	if err != nil {
		otel.Handle(err)
	}
	return inst
}
