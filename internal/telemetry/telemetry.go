// Package telemetry is dddkit's one place for OpenTelemetry: the tracer
// and meter every package instruments with, and the attribute keys they
// share. The library depends only on the OpenTelemetry API; it uses the
// global providers (otel.SetTracerProvider, otel.SetMeterProvider), which
// are no-ops until an application installs an SDK. The instruments are
// created through the global delegates, so an SDK installed after a
// package was loaded still receives them.
package telemetry

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every dddkit span and metric.
const ScopeName = "github.com/dddkit/dddkit"

// Tracer returns dddkit's tracer from the global tracer provider.
func Tracer() trace.Tracer { return otel.GetTracerProvider().Tracer(ScopeName) }

// Meter returns dddkit's meter from the global meter provider.
func Meter() metric.Meter { return otel.GetMeterProvider().Meter(ScopeName) }

// Attribute keys dddkit sets on its spans (and, where the cardinality
// allows, on its metrics). Messaging attributes follow the OpenTelemetry
// semantic conventions.
const (
	AttrCorrelationID = attribute.Key("dddkit.correlation_id")
	AttrCausationID   = attribute.Key("dddkit.causation_id")
	AttrEventID       = attribute.Key("dddkit.event.id")
	AttrEventName     = attribute.Key("dddkit.event.name")
	AttrAggregateType = attribute.Key("dddkit.aggregate.type")
	AttrAggregateID   = attribute.Key("dddkit.aggregate.id")
	AttrCommand       = attribute.Key("dddkit.command")
	AttrHandler       = attribute.Key("dddkit.handler")
)
