package repository_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
	"github.com/dddkit/dddkit/retry"
)

// sliceSink is an EventSink that keeps events in a slice and can be told
// to fail.
type sliceSink struct {
	mu     sync.Mutex
	events []aggregate.Envelope
	fail   error
}

func (s *sliceSink) Append(_ context.Context, events ...aggregate.Envelope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.events = append(s.events, events...)
	return nil
}

func (s *sliceSink) Pending() []aggregate.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

func TestMemorySuite(t *testing.T) {
	t.Parallel()
	repositorytest.Run(t, func(t *testing.T, opts repositorytest.Options) repositorytest.Harness {
		sink, err := outbox.NewMemory(opts.Registry)
		require.NoError(t, err)
		repo, err := repository.NewMemory(sink, opts.Mapping, &repository.MemoryConfig{Retry: opts.Retry, Options: opts.AggregateOptions})
		require.NoError(t, err)
		return repositorytest.Harness{
			Repo:   repo,
			Events: func(testing.TB) []aggregate.Envelope { return sink.Pending() },
		}
	})
}

func TestNewMemoryValidates(t *testing.T) {
	t.Parallel()
	_, err := repository.NewMemory[*repositorytest.Counter](nil, repository.Mapping[*repositorytest.Counter]{},
		&repository.MemoryConfig{Retry: &retry.Policy{MaxAttempts: -1, BaseDelay: -1}})
	require.Error(t, err)
	for _, want := range []string{"sink is nil", "Mapping.Type", "Mapping.Encode", "Mapping.Decode",
		"repository: MemoryConfig.Retry: retry: Policy.MaxAttempts is -1", "Policy.BaseDelay"} {
		require.ErrorContains(t, err, want)
	}
	repo, err := repository.NewMemory(&sliceSink{}, repositorytest.Mapping(), nil)
	require.NoError(t, err)
	require.NotNil(t, repo)
}

func TestMemorySinkFailureStoresNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sink := &sliceSink{fail: errors.New("sink down")}
	repo, err := repository.NewMemory(sink, repositorytest.Mapping(), nil)
	require.NoError(t, err)
	c, err := repositorytest.NewCounter("c1", "x")
	require.NoError(t, err)
	require.ErrorIs(t, repo.Save(ctx, c), sink.fail)
	require.True(t, c.HasChanges())
	require.True(t, c.IsNew())
	_, err = repo.Load(ctx, "c1")
	require.ErrorIs(t, err, aggregate.ErrNotFound)
	_, err = repo.LoadByKey(ctx, "name", "x")
	require.ErrorIs(t, err, aggregate.ErrNotFound)
	require.Equal(t, 0, repo.Len())

	sink.fail = nil
	require.NoError(t, repo.Save(ctx, c), "the same aggregate saves once the sink works")
	require.Len(t, sink.Pending(), 1)
}

func TestMemoryRejectsBadInput(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	repo, err := repository.NewMemory(&sliceSink{}, repositorytest.Mapping(), nil)
	require.NoError(t, err)

	var nilCounter *repositorytest.Counter
	require.Error(t, repo.Save(ctx, nilCounter), "nil aggregate is an error, not a panic")
	require.Error(t, repo.Update(ctx, "c1", nil))

	// An aggregate of another type.
	other := &repositorytest.Counter{}
	other.Init("o1", "other-type", func(aggregate.Event) error { return nil })
	require.NoError(t, other.Record(repositorytest.CounterAdded{N: 1}))
	require.ErrorContains(t, repo.Save(ctx, other), `stores "repositorytest.counter"`)

	canceled, cancel := context.WithCancel(ctx)
	cancel()
	c, err := repositorytest.NewCounter("c1", "x")
	require.NoError(t, err)
	require.ErrorIs(t, repo.Save(canceled, c), context.Canceled)
	_, err = repo.Load(canceled, "c1")
	require.ErrorIs(t, err, context.Canceled)
}

func TestMappingContractChecked(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	good := repositorytest.Mapping()
	cases := map[string]func(m *repository.Mapping[*repositorytest.Counter]){
		"wrong id": func(m *repository.Mapping[*repositorytest.Counter]) {
			dec := m.Decode
			m.Decode = func(_ string, b []byte) (*repositorytest.Counter, error) { return dec("other", b) }
		},
		"nil aggregate": func(m *repository.Mapping[*repositorytest.Counter]) {
			m.Decode = func(string, []byte) (*repositorytest.Counter, error) { return nil, nil }
		},
		"decode error": func(m *repository.Mapping[*repositorytest.Counter]) {
			m.Decode = func(string, []byte) (*repositorytest.Counter, error) { return nil, errors.New("bad state") }
		},
		"not initialised": func(m *repository.Mapping[*repositorytest.Counter]) {
			m.Decode = func(string, []byte) (*repositorytest.Counter, error) { return &repositorytest.Counter{}, nil }
		},
	}
	for name, breakIt := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sink := &sliceSink{}
			m := good
			breakIt(&m)
			repo, err := repository.NewMemory(sink, m, nil)
			require.NoError(t, err)
			c, err := repositorytest.NewCounter("c1", "x")
			require.NoError(t, err)
			require.NoError(t, repo.Save(ctx, c))
			_, err = repo.Load(ctx, "c1")
			require.ErrorContains(t, err, "repository: decode repositorytest.counter c1")
			require.NotErrorIs(t, err, aggregate.ErrNotFound)
		})
	}

	t.Run("encode not JSON", func(t *testing.T) {
		t.Parallel()
		m := good
		m.Encode = func(*repositorytest.Counter) ([]byte, error) { return []byte("not json"), nil }
		repo, err := repository.NewMemory(&sliceSink{}, m, nil)
		require.NoError(t, err)
		c, err := repositorytest.NewCounter("c1", "x")
		require.NoError(t, err)
		require.ErrorContains(t, repo.Save(ctx, c), "no valid JSON")
		require.True(t, c.HasChanges())
	})
}

func TestRetryGivesUpAndHonoursContext(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sink := &sliceSink{}
	repo, err := repository.NewMemory(sink, repositorytest.Mapping(), &repository.MemoryConfig{
		Retry: &retry.Policy{MaxAttempts: 3, BaseDelay: 1},
	})
	require.NoError(t, err)
	c, err := repositorytest.NewCounter("c1", "x")
	require.NoError(t, err)
	require.NoError(t, repo.Save(ctx, c))

	// fn always loses the race: another writer saves in between.
	calls := 0
	interfere := func(c *repositorytest.Counter) error {
		calls++
		other, err := repo.Load(ctx, "c1")
		require.NoError(t, err)
		require.NoError(t, other.Add(1))
		require.NoError(t, repo.Save(ctx, other))
		return c.Add(10)
	}
	err = repo.Update(ctx, "c1", interfere)
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	require.ErrorContains(t, err, "gave up after 3 attempts")
	require.Equal(t, 3, calls)

	// A context that ends during the wait stops the retries.
	slow, err := repository.NewMemory(sink, repositorytest.Mapping(), &repository.MemoryConfig{
		Retry: &retry.Policy{MaxAttempts: 5, BaseDelay: time.Hour},
	})
	require.NoError(t, err)
	require.NoError(t, slow.Save(ctx, mustCounter(t, "c2")))
	ctx2, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	calls = 0
	start := time.Now()
	err = slow.Update(ctx2, "c2", func(c *repositorytest.Counter) error {
		calls++
		other, err := slow.Load(ctx, "c2")
		require.NoError(t, err)
		require.NoError(t, other.Add(1))
		require.NoError(t, slow.Save(ctx, other))
		return c.Add(10)
	})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	require.Equal(t, 1, calls)
	require.Less(t, time.Since(start), 10*time.Second)
}

func mustCounter(t *testing.T, id string) *repositorytest.Counter {
	t.Helper()
	c, err := repositorytest.NewCounter(id, id)
	require.NoError(t, err)
	return c
}

// memOutbox is an in-memory outbox that knows Counter's events.
func memOutbox(t *testing.T) *outbox.Memory {
	t.Helper()
	ob, err := outbox.NewMemory(repositorytest.Registry(t))
	require.NoError(t, err)
	return ob
}
