package dddkitcli_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkitcli"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/projection"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// saveCounters stores n counters of one event each and one add.
func saveCounters(t testing.TB, pool *pgxpool.Pool, ob *postgres.Outbox, from, n int) {
	t.Helper()
	store, err := postgres.NewEventStore(pool, ob, repositorytest.EventMapping(), nil)
	require.NoError(t, err)
	for i := from; i < from+n; i++ {
		c, err := repositorytest.NewCounter(fmt.Sprint("c", i), "counter")
		require.NoError(t, err)
		require.NoError(t, c.Add(1))
		require.NoError(t, store.Save(context.Background(), c))
	}
}

type projectionStatus struct {
	Name       string
	Position   int64
	Head       int64
	LagEvents  int64 `json:"lag_events"`
	Applied    int64
	Rebuilding bool
	Linked     bool
}

// projections status reads the checkpoints; the generic command cannot
// rebuild (it has no handlers) and says how to; a command that links the
// service's runner rebuilds through it.
func TestProjections(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, schema := pgtest.Schema(t)
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	env := map[string]string{dddkitcli.EnvDatabaseURL: pgtest.DatabaseURL(t), dddkitcli.EnvSchema: schema}
	reg := repositorytest.Registry(t)
	ob, err := postgres.NewOutbox(pool, reg, nil)
	require.NoError(t, err)

	var added atomic.Int64 // the read model: how many adds
	p, err := projection.New("adds", reg)
	require.NoError(t, err)
	p.OnReset(func(context.Context) error { added.Store(0); return nil })
	require.NoError(t, projection.On(p, func(_ context.Context, e repositorytest.CounterAdded, _ aggregate.Envelope) error {
		added.Add(int64(e.N))
		return nil
	}))
	stream, err := postgres.NewEventStream(pool, reg, nil)
	require.NoError(t, err)
	defer stream.Close()
	store, err := postgres.NewProjectionStore(pool, nil)
	require.NoError(t, err)
	runner, err := projection.NewRunner(p, stream, store, &projection.RunnerConfig{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)

	r := cli(t, nil, env, "projections", "status")
	require.Contains(t, r.stdout, "no projections have a checkpoint")

	saveCounters(t, pool, ob, 0, 3) // 6 events
	require.NoError(t, runner.CatchUp(ctx))
	require.Equal(t, int64(3), added.Load())
	saveCounters(t, pool, ob, 3, 1) // 2 more, not applied
	sts := jsonOf[[]projectionStatus](t, cli(t, nil, env, "projections", "status", "--json"))
	require.Equal(t, []projectionStatus{{Name: "adds", Position: 6, Head: 8, LagEvents: 2, Applied: 3}}, sts)

	r = cli(t, nil, env, "projections", "rebuild", "adds")
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	require.Contains(t, r.stderr, "dddkitcli.Command{Projections:")
	require.Equal(t, int64(3), added.Load(), "nothing was reset")

	linked := &dddkitcli.Command{Projections: []*projection.Runner{runner}}
	added.Store(100) // what a rebuild must throw away
	r = cli(t, linked, env, "projections", "rebuild", "adds")
	require.Equal(t, dddkitcli.ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "adds rebuilt: 4 events applied, at position 8")
	require.Equal(t, int64(4), added.Load())
	sts = jsonOf[[]projectionStatus](t, cli(t, linked, env, "projections", "status", "--json"))
	require.Equal(t, []projectionStatus{{Name: "adds", Position: 8, Head: 8, Applied: 4, Linked: true}}, sts)
	r = cli(t, linked, env, "projections", "rebuild", "other")
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	require.Contains(t, r.stderr, `no projection "other"`)
}
