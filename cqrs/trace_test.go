package cqrs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/internal/telemetry/telemetrytest"
)

type getCount struct{}

func (getCount) QueryName() string { return "counter.get" }

// Each dispatch is a span named after the command or query, with the
// correlation and causation IDs of the context; a handler's error is
// the span's error status. (Not parallel: it installs the global tracer
// provider.)
func TestDispatchSpans(t *testing.T) {
	rec := telemetrytest.Record(t)
	bus, err := cqrs.New(&cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Validation()}})
	require.NoError(t, err)
	c := &counter{}
	require.NoError(t, cqrs.HandleCommand(bus, c.Increment))
	boom := errors.New("boom")
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, getCount) (int64, error) { return 0, boom }))

	ctx := aggregate.ContextWithMetadata(t.Context(), aggregate.Metadata{CorrelationID: "corr-1", CausationID: "ev-7"})
	_, err = cqrs.Send[int64](ctx, bus, IncrementCounter{By: 1})
	require.NoError(t, err)
	require.NoError(t, cqrs.Exec(ctx, bus, IncrementCounter{By: 1}))
	_, err = cqrs.Ask[int64](ctx, bus, getCount{})
	require.ErrorIs(t, err, boom)
	_, err = cqrs.Send[int64](ctx, bus, IncrementCounter{By: -1}) // refused by Validation
	require.True(t, cqrs.IsRefusal(err))

	commands := telemetrytest.Named(rec, "command counter.increment")
	require.Len(t, commands, 3, "Send, Exec and the refused Send")
	refused := commands[2]
	require.Equal(t, "true", telemetrytest.Attr(refused, "dddkit.refused"))
	require.Equal(t, codes.Unset, refused.Status().Code, "a refusal is no error of the service")
	for _, s := range commands[:2] {
		require.Equal(t, "counter.increment", telemetrytest.Attr(s, "dddkit.command"))
		require.Equal(t, "corr-1", telemetrytest.Attr(s, "dddkit.correlation_id"))
		require.Equal(t, "ev-7", telemetrytest.Attr(s, "dddkit.causation_id"))
		require.Equal(t, codes.Unset, s.Status().Code)
	}
	queries := telemetrytest.Named(rec, "query counter.get")
	require.Len(t, queries, 1)
	require.Equal(t, "counter.get", telemetrytest.Attr(queries[0], "dddkit.query"))
	require.Equal(t, codes.Error, queries[0].Status().Code)
	require.Equal(t, "boom", queries[0].Status().Description)
}

// With no tracer provider installed, or a no-op one, a dispatch
// allocates nothing for tracing.
func TestDispatchWithoutTracingAllocatesNothing(t *testing.T) {
	for _, mode := range []string{"off", "noop"} {
		t.Run(mode, func(t *testing.T) {
			telemetrytest.Use(t, mode)
			bus, err := cqrs.New(nil)
			require.NoError(t, err)
			c := &counter{}
			require.NoError(t, cqrs.HandleCommand(bus, c.Increment))
			ctx := context.Background()
			allocs := testing.AllocsPerRun(100, func() {
				_, _ = cqrs.Send[int64](ctx, bus, IncrementCounter{By: 1})
			})
			require.Zero(t, allocs)
		})
	}
}
