package projection_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/internal/uuidv7"
	"github.com/dddkit/dddkit/projection"
	"github.com/dddkit/dddkit/projection/projectiontest"
)

// A runner records its position and how far behind the stream's head it
// is after every batch, from what the batch read.
func TestRunnerRecordsPositionAndLag(t *testing.T) {
	t.Parallel()
	m := testinfra.GlobalMetrics()
	name := dddkittest.UniqueName(t)
	p, err := projection.New(name, projectiontest.Registry(t))
	require.NoError(t, err)
	require.NoError(t, projection.On(p, func(context.Context, projectiontest.Counted, aggregate.Envelope) error { return nil }))
	p.OnReset(func(context.Context) error { return nil })
	stream := projectiontest.NewStream()
	var envs []aggregate.Envelope
	for i := range 25 {
		envs = append(envs, aggregate.Envelope{
			ID: uuidv7.New().String(), Name: projectiontest.Counted{}.EventName(), AggregateType: projectiontest.AggregateType,
			AggregateID: "c1", Version: int64(i + 1), OccurredAt: time.Now(), Payload: projectiontest.Counted{N: i + 1},
		})
	}
	stream.Append(envs...) // positions 2 to 26
	r, err := projection.NewRunner(p, stream, projection.NewMemoryStore(), &projection.RunnerConfig{BatchSize: 10, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)

	attr := attribute.String("dddkit.projection", name)
	gauges := func() (position, lag float64) {
		position, ok := m.Value(t, "dddkit.projection.position", attr)
		require.True(t, ok)
		lag, ok = m.Value(t, "dddkit.projection.lag", attr)
		require.True(t, ok)
		return position, lag
	}
	type reading struct{ position, lag float64 }
	var seen []reading
	require.NoError(t, r.Rebuild(t.Context(), func(projection.Progress) {
		pos, lag := gauges()
		seen = append(seen, reading{pos, lag})
	}))
	require.Equal(t, []reading{{11, 15}, {21, 5}, {26, 0}}, seen, "after each batch")
}
