package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

func TestEventStoreSuite(t *testing.T) {
	t.Parallel()
	repositorytest.Run(t, func(t *testing.T, opts repositorytest.Options) repositorytest.Harness {
		b := setupPG(t, opts.Registry)
		store, err := postgres.NewEventStore(b.pool, b.outbox, opts.EventMapping, &postgres.RepositoryConfig{Retry: opts.Retry, Options: opts.AggregateOptions})
		require.NoError(t, err)
		// Load replays the whole history, so the lost-update test's cost
		// grows with the square of the updates per aggregate: 50 per
		// worker (1,000 in all) keep it at a few seconds under -race.
		return repositorytest.Harness{Repo: store, Events: b.outboxEvents, UpdatesPerWorker: 50}
	})
}

func newEventStore(t testing.TB, b pgBundle) *postgres.EventStore[*repositorytest.Counter] {
	t.Helper()
	s, err := postgres.NewEventStore(b.pool, b.outbox, repositorytest.EventMapping(), nil)
	require.NoError(t, err)
	return s
}

func TestEventStoreKeepsHistoryAndMetadata(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
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

	// Several aggregates in one unit of work, with the state store next
	// to the event store.
	states := newRepo(t, b, nil)
	other := mustCounter(t, "s1")
	err := b.uow.Do(ctx, func(ctx context.Context) error {
		if err := s.Update(ctx, "c1", func(c *repositorytest.Counter) error { return c.Add(3) }); err != nil {
			return err
		}
		return states.Save(ctx, other)
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
	_, err := postgres.NewEventStore[*repositorytest.Counter](nil, nil, repository.EventMapping[*repositorytest.Counter]{}, nil)
	for _, want := range []string{"nil DB", "nil Outbox", "EventMapping.Type", "EventMapping.New"} {
		require.ErrorContains(t, err, want)
	}
}

// addedV2 is CounterAdded at schema version 2: the field was renamed.
type addedV2 struct {
	Amount int `json:"amount"`
}

func (addedV2) EventName() string { return repositorytest.CounterAdded{}.EventName() }
func (addedV2) EventVersion() int { return 2 }

// The store keeps each payload's schema version and loads old payloads
// through the registry's upcasters: one registry for the store, the
// outbox and the consumers.
func TestEventStoreUpcastsThroughTheRegistry(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	s := newEventStore(t, b)
	c := mustCounter(t, "c1")
	require.NoError(t, c.Add(4))
	require.NoError(t, s.Save(ctx, c))
	var version int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT event_version FROM aggregate_events WHERE id = 'c1' AND version = 2`).Scan(&version))
	require.Equal(t, 1, version)

	// A registry that knows CounterAdded only at version 2 reads the
	// version-1 row through its upcaster.
	reg := eventbus.NewRegistry(nil)
	require.NoError(t, eventbus.Register[repositorytest.CounterCreated](reg))
	require.NoError(t, eventbus.Register[addedV2](reg, eventbus.Upcaster(1, func(p json.RawMessage) (json.RawMessage, error) {
		var v1 repositorytest.CounterAdded
		if err := json.Unmarshal(p, &v1); err != nil {
			return nil, err
		}
		return json.Marshal(addedV2{Amount: v1.N})
	})))
	ob, err := postgres.NewOutbox(b.pool, reg, nil)
	require.NoError(t, err)
	var seen []aggregate.Event
	v2, err := postgres.NewEventStore(b.pool, ob, repository.EventMapping[*recorder]{
		Type: repositorytest.CounterType,
		New: func(id string) *recorder {
			r := &recorder{}
			r.Init(id, repositorytest.CounterType, func(e aggregate.Event) error { seen = append(seen, e); return nil })
			return r
		},
	}, nil)
	require.NoError(t, err)
	_, err = v2.Load(ctx, "c1")
	require.NoError(t, err)
	require.Len(t, seen, 2)
	require.Equal(t, addedV2{Amount: 4}, seen[1])

	// An event the registry does not know fails the load, clearly.
	empty := eventbus.NewRegistry(nil)
	ob2, err := postgres.NewOutbox(b.pool, empty, nil)
	require.NoError(t, err)
	broken, err := postgres.NewEventStore(b.pool, ob2, repositorytest.EventMapping(), nil)
	require.NoError(t, err)
	_, err = broken.Load(ctx, "c1")
	require.ErrorIs(t, err, eventbus.ErrUnknownEvent)
	require.NotErrorIs(t, err, aggregate.ErrNotFound)
}

// recorder is an aggregate that records what it is replayed.
type recorder struct{ aggregate.Root }
