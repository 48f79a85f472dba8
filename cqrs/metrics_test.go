package cqrs_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/internal/testinfra"
)

type chargeCard struct{ Outcome string }

func (chargeCard) CommandName() string { return "billing.charge_card" }

type getBalance struct{}

func (getBalance) QueryName() string { return "billing.get_balance" }

func TestMetricsRecordsDispatchesByKindNameAndOutcome(t *testing.T) {
	t.Parallel()
	m := testinfra.NewMetrics(t)
	mw := cqrs.MetricsOn(m.Meter())
	bus, err := cqrs.New(&cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{mw, cqrs.Recover()},
		QueryMiddleware:   []cqrs.Middleware{mw},
	})
	require.NoError(t, err)
	require.NoError(t, cqrs.HandleCommand(bus, func(_ context.Context, c chargeCard) (int, error) {
		switch c.Outcome {
		case "refused":
			return 0, cqrs.Refuse(errors.New("card declined"))
		case "conflict":
			return 0, fmt.Errorf("save: %w", aggregate.ErrConcurrencyConflict)
		case "error":
			return 0, errors.New("gateway down")
		case "panic":
			panic("boom")
		}
		return 42, nil
	}))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, getBalance) (int, error) { return 7, nil }))

	ctx := t.Context()
	for _, o := range []string{"ok", "ok", "ok", "refused", "conflict", "error", "panic"} {
		n, err := cqrs.Send[int](ctx, bus, chargeCard{Outcome: o})
		if o == "ok" {
			require.NoError(t, err)
			require.Equal(t, 42, n, "the middleware passes the result through")
		} else {
			require.Error(t, err)
		}
	}
	v, err := cqrs.Ask[int](ctx, bus, getBalance{})
	require.NoError(t, err)
	require.Equal(t, 7, v)

	const name = "dddkit.bus.dispatch.duration"
	count := func(kind, msg, outcome string) float64 {
		n, _ := m.Value(t, name, attribute.String("dddkit.kind", kind), attribute.String("dddkit.name", msg), attribute.String("dddkit.outcome", outcome))
		return n
	}
	require.Equal(t, 3.0, count("command", "billing.charge_card", "ok"))
	require.Equal(t, 1.0, count("command", "billing.charge_card", "refused"))
	require.Equal(t, 1.0, count("command", "billing.charge_card", "conflict"))
	require.Equal(t, 2.0, count("command", "billing.charge_card", "error"), "an error and a recovered panic")
	require.Equal(t, 1.0, count("query", "billing.get_balance", "ok"))
	total, _ := m.Value(t, name)
	require.Equal(t, 8.0, total, "one data point per dispatch, no other series")
	for _, p := range m.Collect(t, name) {
		require.Positive(t, p.Sum, "durations are measured")
	}
}

// Without an SDK (the global provider is a no-op in this test binary),
// the middleware is transparent.
func TestMetricsWithoutSDKPassesThrough(t *testing.T) {
	t.Parallel()
	bus, err := cqrs.New(&cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Metrics()}})
	require.NoError(t, err)
	require.NoError(t, cqrs.HandleCommand(bus, func(_ context.Context, c chargeCard) (int, error) {
		if c.Outcome == "error" {
			return 0, errors.New("gateway down")
		}
		return 42, nil
	}))
	n, err := cqrs.Send[int](t.Context(), bus, chargeCard{})
	require.NoError(t, err)
	require.Equal(t, 42, n)
	_, err = cqrs.Send[int](t.Context(), bus, chargeCard{Outcome: "error"})
	require.EqualError(t, err, "gateway down")
}
