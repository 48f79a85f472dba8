package cqrs

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// Metrics returns a middleware that records every dispatch in the
// OpenTelemetry histogram dddkit.bus.dispatch.duration (seconds; in
// Prometheus dddkit_bus_dispatch_duration_seconds, whose _count is the
// number of dispatches), labelled with
//
//   - dddkit.kind: "command" or "query";
//   - dddkit.name: the command's or query's stable name;
//   - dddkit.outcome: "ok", "refused" (a refusal, see [IsRefusal]),
//     "conflict" (a concurrency conflict that outlived any retries) or
//     "error" (anything else, panics included).
//
// It uses the global MeterProvider (otel.SetMeterProvider): until an
// application installs an SDK, the middleware costs one check per
// dispatch and reads no clock.
//
// Put it just inside [Logging], outside [Recover] and [Retry], so that a
// dispatch counts once, with the time its retries took, and a panic
// counts as an error:
//
//	CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger), cqrs.Metrics(), cqrs.Recover(), cqrs.Validation(), retry, cqrs.Transaction(uow)}
func Metrics() Middleware {
	return newMetrics(telemetry.Meter())
}

// newMetrics is [Metrics] on the given meter.
func newMetrics(meter metric.Meter) Middleware {
	hist := telemetry.Must(meter.Float64Histogram("dddkit.bus.dispatch.duration",
		metric.WithUnit("s"),
		metric.WithDescription("Duration of command and query dispatches, by kind, name and outcome."),
		metric.WithExplicitBucketBoundaries(telemetry.DurationBuckets...)))
	return func(next HandlerFunc) HandlerFunc {
		// Each handler has its own chain, so one message name: its
		// attribute sets are made at the first dispatch and reused.
		var sets atomic.Pointer[dispatchAttrs]
		return func(ctx context.Context, msg Message) (any, error) {
			if !hist.Enabled(ctx) {
				return next(ctx, msg)
			}
			start := time.Now()
			res, err := next(ctx, msg)
			d := time.Since(start).Seconds()
			s := sets.Load()
			if s == nil || s.kind != msg.Kind || s.name != msg.Name {
				s = newDispatchAttrs(msg)
				sets.Store(s)
			}
			hist.Record(ctx, d, s.outcome[dispatchOutcome(err)])
			return res, err
		}
	}
}

// The values of dddkit.outcome on the bus.
const (
	dispatchOK = iota
	dispatchRefused
	dispatchConflict
	dispatchError
)

var outcomeNames = [...]string{"ok", "refused", "conflict", "error"}

func dispatchOutcome(err error) int {
	switch {
	case err == nil:
		return dispatchOK
	case IsRefusal(err):
		return dispatchRefused
	case errors.Is(err, aggregate.ErrConcurrencyConflict):
		return dispatchConflict
	default:
		return dispatchError
	}
}

type dispatchAttrs struct {
	kind    Kind
	name    string
	outcome [len(outcomeNames)]metric.MeasurementOption
}

func newDispatchAttrs(msg Message) *dispatchAttrs {
	s := &dispatchAttrs{kind: msg.Kind, name: msg.Name}
	for i, o := range outcomeNames {
		s.outcome[i] = telemetry.Attrs(
			telemetry.AttrKind.String(msg.Kind.String()),
			telemetry.AttrName.String(msg.Name),
			telemetry.AttrOutcome.String(o))
	}
	return s
}
