package repository_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

func TestMemoryEventStoreSuite(t *testing.T) {
	t.Parallel()
	repositorytest.Run(t, func(t *testing.T, opts repositorytest.Options) repositorytest.Harness {
		sink, err := outbox.NewMemory(opts.Registry)
		require.NoError(t, err)
		log, err := repository.NewMemoryEventLog(sink, nil)
		require.NoError(t, err)
		store, err := repository.NewMemoryEventStore(log, opts.EventMapping, &repository.MemoryConfig{Retry: opts.Retry, Options: opts.AggregateOptions})
		require.NoError(t, err)
		return repositorytest.Harness{
			Repo:             store,
			Events:           func(testing.TB) []aggregate.Envelope { return sink.Pending() },
			UpdatesPerWorker: 50,
		}
	})
}

func TestMemoryEventLogStreamSuite(t *testing.T) {
	t.Parallel()
	repositorytest.RunStream(t, func(t *testing.T, reg *eventbus.Registry) repositorytest.StreamHarness {
		sink, err := outbox.NewMemory(reg)
		require.NoError(t, err)
		log, err := repository.NewMemoryEventLog(sink, nil)
		require.NoError(t, err)
		return repositorytest.StreamHarness{
			Stream: log,
			NewStore: func(t testing.TB, m repository.EventMapping[*repositorytest.Counter]) repository.Repository[*repositorytest.Counter] {
				s, err := repository.NewMemoryEventStore(log, m, nil)
				require.NoError(t, err)
				return s
			},
		}
	})
}

func TestNewMemoryEventStoreValidates(t *testing.T) {
	t.Parallel()
	_, err := repository.NewMemoryEventLog(nil, nil)
	require.ErrorContains(t, err, "sink is nil")
	_, err = repository.NewMemoryEventStore[*repositorytest.Counter](nil, repository.EventMapping[*repositorytest.Counter]{}, nil)
	for _, want := range []string{"log is nil", "EventMapping.Type", "EventMapping.New"} {
		require.ErrorContains(t, err, want)
	}
}

// A failing sink fails the save: nothing reaches the log.
func TestMemoryEventStoreSinkFailureAppendsNothing(t *testing.T) {
	t.Parallel()
	sink := &sliceSink{fail: errors.New("sink down")}
	log, err := repository.NewMemoryEventLog(sink, nil)
	require.NoError(t, err)
	store, err := repository.NewMemoryEventStore(log, repositorytest.EventMapping(), nil)
	require.NoError(t, err)
	c, err := repositorytest.NewCounter("c1", "c1")
	require.NoError(t, err)
	require.ErrorContains(t, store.Save(t.Context(), c), "sink down")
	require.Zero(t, log.Len())
	require.True(t, c.HasChanges())
	_, err = store.Load(t.Context(), "c1")
	require.ErrorIs(t, err, aggregate.ErrNotFound)
}
