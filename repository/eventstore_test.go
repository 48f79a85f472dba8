package repository_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

func TestEventStoreSuite(t *testing.T) {
	t.Parallel()
	repositorytest.Run(t, func(t *testing.T, opts repositorytest.Options) repositorytest.Harness {
		b := setupPG(t)
		store, err := repository.NewEventStore(b.pool, b.store, opts.EventMapping, &repository.EventStoreConfig[*repositorytest.Counter]{Retry: opts.Retry, Options: opts.AggregateOptions})
		require.NoError(t, err)
		// Load replays the whole history, so the lost-update test's cost
		// grows with the square of the updates per aggregate: 50 per
		// worker (1,000 in all) keep it at a few seconds under -race.
		return repositorytest.Harness{Repo: store, Events: b.outboxEvents, UpdatesPerWorker: 50}
	})
}

func newEventStore(t *testing.T, b pgBundle) *repository.EventStore[*repositorytest.Counter] {
	t.Helper()
	m, err := repositorytest.EventMapping()
	require.NoError(t, err)
	s, err := repository.NewEventStore(b.pool, b.store, m, nil)
	require.NoError(t, err)
	return s
}

func TestEventStoreKeepsHistoryAndMetadata(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t)
	s := newEventStore(t, b)
	md := aggregate.Metadata{CorrelationID: "corr", Values: map[string]string{"tenant": "t1"}}
	c := mustCounter(t, "c1")
	require.NoError(t, c.Add(2))
	require.NoError(t, s.Save(aggregate.ContextWithMetadata(ctx, md), c))

	var rows, withMeta int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT count(*), count(metadata) FROM aggregate_events WHERE id = 'c1'`).Scan(&rows, &withMeta))
	require.Equal(t, 2, rows)
	require.Equal(t, 2, withMeta)
	var tenant string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT metadata->'values'->>'tenant' FROM aggregate_events WHERE id = 'c1' AND version = 2`).Scan(&tenant))
	require.Equal(t, "t1", tenant)

	// Several aggregates in one transaction, with the state store next to
	// the event store.
	states := newPGRepo(t, b, nil)
	other := mustCounter(t, "s1")
	err := repository.Transact(ctx, b.pool, func(ctx context.Context, tx pgx.Tx) error {
		if err := s.UpdateTx(ctx, tx, "c1", func(c *repositorytest.Counter) error { return c.Add(3) }); err != nil {
			return err
		}
		return states.SaveTx(ctx, tx, other)
	})
	require.NoError(t, err)
	got, err := s.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, 5, got.Value())
	require.Equal(t, int64(3), got.Version())
	require.Equal(t, int64(1), other.CommittedVersion())
	require.Len(t, b.outboxEvents(t), 4)
}

func TestEventStoreRejectsBadMappings(t *testing.T) {
	t.Parallel()
	_, err := repository.NewEventStore[*repositorytest.Counter](nil, nil, repository.EventMapping[*repositorytest.Counter]{}, nil)
	for _, want := range []string{"db is nil", "outbox is nil", "EventMapping.Type", "EventMapping.New", "EventMapping.Decode"} {
		require.ErrorContains(t, err, want)
	}
	_, err = repository.JSONEvents(repository.JSONEvent[repositorytest.CounterAdded](), repository.JSONEvent[repositorytest.CounterAdded]())
	require.ErrorContains(t, err, `two event types are named "repositorytest.counter_added"`)
	_, err = repository.JSONEvents(repository.JSONEvent[*nilUnsafeEvent]())
	require.ErrorContains(t, err, "use a value type")

	decode, err := repository.JSONEvents(repository.JSONEvent[repositorytest.CounterAdded]())
	require.NoError(t, err)
	e, err := decode("repositorytest.counter_added", []byte(`{"N":4}`))
	require.NoError(t, err)
	require.Equal(t, repositorytest.CounterAdded{N: 4}, e)
	_, err = decode("nope", nil)
	require.ErrorContains(t, err, `unknown event "nope"`)
}

type nilUnsafeEvent struct{ name string }

func (e *nilUnsafeEvent) EventName() string { return e.name }

func TestEventStoreUnknownEventFailsLoad(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t)
	s := newEventStore(t, b)
	require.NoError(t, s.Save(ctx, mustCounter(t, "c1")))
	m, err := repositorytest.EventMapping()
	require.NoError(t, err)
	m.Decode = func(string, []byte) (aggregate.Event, error) { return nil, errors.New("no decoder") }
	broken, err := repository.NewEventStore(b.pool, b.store, m, nil)
	require.NoError(t, err)
	_, err = broken.Load(ctx, "c1")
	require.ErrorContains(t, err, "no decoder")
	require.NotErrorIs(t, err, aggregate.ErrNotFound)
}
