package projection_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/projection"
	"github.com/dddkit/dddkit/projection/projectiontest"
)

// The same projection value runs on the in-memory bus (Router + inbox):
// each event applied once however often it is published, the events of
// one aggregate in order.
func TestSubscribeMemoryBus(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	reg := projectiontest.Registry(t)
	quiet := slog.New(slog.DiscardHandler)
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: quiet})
	defer transport.Close()
	router, err := eventbus.NewRouter(transport, reg, &eventbus.RouterConfig{Logger: quiet})
	require.NoError(t, err)

	rm := projectiontest.NewMemoryReadModel()
	p, err := projection.New("bus", reg)
	require.NoError(t, err)
	add := func(ctx context.Context, env aggregate.Envelope) error {
		return rm.Add(ctx, env.ID, env.AggregateID, env.Version)
	}
	require.NoError(t, projection.On(p, func(ctx context.Context, _ projectiontest.Counted, env aggregate.Envelope) error {
		return add(ctx, env)
	}))
	require.NoError(t, projection.On(p, func(ctx context.Context, _ projectiontest.Reset, env aggregate.Envelope) error { return add(ctx, env) }))
	require.NoError(t, p.Subscribe(router, eventbus.NewMemoryInbox(), projection.NewMemoryStore()))

	go func() { _ = router.Run(ctx) }()
	defer router.Close()
	<-router.Running()

	pub, err := eventbus.NewPublisher(transport.Publisher(), reg)
	require.NoError(t, err)
	envs := projectiontest.Events(200, 5, map[string]int64{})
	require.NoError(t, pub.Publish(ctx, envs...))
	require.NoError(t, pub.Publish(ctx, envs[:50]...)) // delivered again

	counts, order, err := rm.Applied(ctx)
	require.NoError(t, err)
	want := 0
	for _, e := range envs {
		if e.Name == (projectiontest.Ignored{}).EventName() {
			continue
		}
		want++
		require.Equal(t, 1, counts[e.ID], "event %s", e.ID)
	}
	require.Len(t, counts, want)
	for agg, vs := range order {
		require.IsIncreasing(t, vs, "aggregate %s", agg)
	}
	st := p.BusStatus()
	require.Equal(t, int64(want), st.Applied)
	require.Empty(t, st.LastError)
}

func TestDeclarationErrors(t *testing.T) {
	t.Parallel()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test"})
	_, err := projection.New("", nil)
	require.ErrorContains(t, err, "empty name")
	require.ErrorContains(t, err, "nil Registry")

	p, err := projection.New("p", reg)
	require.NoError(t, err)
	err = projection.On(p, func(context.Context, projectiontest.Counted, aggregate.Envelope) error { return nil })
	require.ErrorIs(t, err, eventbus.ErrNotRegistered)
	require.True(t, strings.Contains(err.Error(), `projection "p"`), err.Error())

	reg = projectiontest.Registry(t)
	p, err = projection.New("p", reg)
	require.NoError(t, err)
	_, err = projection.NewRunner(p, projectiontest.NewStream(), projection.NewMemoryStore(), nil)
	require.ErrorContains(t, err, "no event types declared")
	fn := func(context.Context, projectiontest.Counted, aggregate.Envelope) error { return nil }
	require.NoError(t, projection.On(p, fn))
	require.ErrorContains(t, projection.On(p, fn), "declared twice")
	_, err = projection.NewRunner(p, nil, nil, &projection.RunnerConfig{BatchSize: -1})
	require.ErrorContains(t, err, "nil Stream")
	require.ErrorContains(t, err, "nil Store")
	require.ErrorContains(t, err, "BatchSize")
}
