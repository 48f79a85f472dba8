// Package repositorytest is the test suite that every adapter of the
// repository port must pass, in the manner of testing/slogtest: an adapter's
// test calls [Run] with a function that builds a fresh repository of
// [Counter] aggregates, and the suite checks the port's contract against
// it — round trips, not-found, optimistic concurrency, Update, events
// reaching the outbox exactly once and in version order, metadata from the
// context, the configured aggregate options (the clock) on loaded
// aggregates, unique keys, and no lost updates under concurrent writers.
package repositorytest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/retry"
)

// Options says how the suite wants the repository built.
type Options struct {
	// Mapping is the mapping a state-storing repository must use.
	Mapping repository.Mapping[*Counter]
	// EventMapping is the mapping an event-sourced repository must use.
	EventMapping repository.EventMapping[*Counter]
	// AggregateOptions are the options the repository must apply to every
	// aggregate it loads: its config's Options field.
	AggregateOptions []aggregate.Option
	// Retry is what the repository's Update must do on a conflict; nil
	// means no retry.
	Retry *retry.Policy
	// Registry knows Counter's events: the adapter's outbox (and event
	// store) must encode them with it.
	Registry *eventbus.Registry
}

// Harness is one fresh, empty repository under test and a view of where its
// events go.
type Harness struct {
	// Repo is the repository under test. If it also implements
	// repository.KeyLoader, the unique-key tests run too.
	Repo repository.Repository[*Counter]
	// Events returns every event that reached the outbox or sink so far,
	// in the order they were written. Payload may be nil if the store
	// keeps only encoded payloads; ID, Name, AggregateType, AggregateID,
	// Version, OccurredAt and Metadata must be set.
	Events func(t testing.TB) []aggregate.Envelope
	// LocksOnUpdate says that Update locks the aggregate while fn runs
	// (pessimistic locking). The suite then skips the test that writes the
	// aggregate from inside fn, which would deadlock.
	LocksOnUpdate bool
	// UpdatesPerWorker scales the lost-update test (20 workers, 5
	// aggregates). 0 means 200, 4,000 updates in all; an adapter whose
	// Load cost grows with the aggregate's history (event sourcing
	// without snapshots) may ask for fewer.
	UpdatesPerWorker int
}

// Run runs the suite. newHarness is called once per subtest and must
// return a repository that shares nothing with the others (subtests run in
// parallel).
func Run(t *testing.T, newHarness func(t *testing.T, opts Options) Harness) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
		opts Options
	}{
		{"SaveLoadRoundTrip", testRoundTrip, Options{}},
		{"NotFound", testNotFound, Options{}},
		{"StaleVersionConflicts", testStaleVersion, Options{}},
		{"DuplicateIDAlreadyExists", testDuplicateID, Options{}},
		{"NoChangesWritesNothing", testNoChanges, Options{}},
		{"UpdateRunsFnAndSaves", testUpdate, Options{}},
		{"UpdateFnErrorSavesNothing", testUpdateFnError, Options{}},
		{"UpdateWithoutRetryReturnsConflict", testUpdateConflictNoRetry, Options{}},
		{"EventsExactlyOnceInOrder", testEventsOnce, Options{}},
		{"MetadataFromContext", testMetadata, Options{}},
		{"LoadedAggregatesGetOptions", testLoadOptions, Options{AggregateOptions: []aggregate.Option{
			aggregate.WithClock(func() time.Time { return suiteTime }),
			aggregate.WithMetadata(aggregate.Metadata{CausationID: "configured", Values: map[string]string{"service": "suite"}}),
		}}},
		{"UniqueKeys", testKeys, Options{}},
		{"NoLostUpdates", testLostUpdates, Options{Retry: &retry.Policy{MaxAttempts: 100, BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			opts.Mapping = Mapping()
			opts.EventMapping = EventMapping()
			opts.Registry = Registry(t)
			h := newHarness(t, opts)
			require.NotNil(t, h.Repo, "harness without Repo")
			require.NotNil(t, h.Events, "harness without Events")
			tt.fn(t, h)
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func create(t *testing.T, h Harness, id, name string) *Counter {
	t.Helper()
	c, err := NewCounter(id, name)
	require.NoError(t, err)
	require.NoError(t, h.Repo.Save(ctx(t), c))
	return c
}

func load(t *testing.T, h Harness, id string) *Counter {
	t.Helper()
	c, err := h.Repo.Load(ctx(t), id)
	require.NoError(t, err)
	require.NotNil(t, c)
	return c
}

// eventsOf returns the versions of the events of aggregate id, in write
// order, and checks the envelope fields the outbox must keep.
func eventsOf(t *testing.T, h Harness, id string) ([]int64, []aggregate.Envelope) {
	t.Helper()
	var versions []int64
	var envs []aggregate.Envelope
	seen := map[string]bool{}
	for _, e := range h.Events(t) {
		if e.AggregateID != id {
			continue
		}
		require.Equal(t, CounterType, e.AggregateType)
		require.NotEmpty(t, e.ID)
		require.NotEmpty(t, e.Name)
		require.False(t, seen[e.ID], "event %s (%s v%d) written twice", e.ID, id, e.Version)
		seen[e.ID] = true
		versions = append(versions, e.Version)
		envs = append(envs, e)
	}
	return versions, envs
}

func seq(n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64(i) + 1
	}
	return out
}

func testRoundTrip(t *testing.T, h Harness) {
	c, err := NewCounter("c1", "first")
	require.NoError(t, err)
	require.NoError(t, c.Add(3))
	require.NoError(t, c.Add(4))
	require.NoError(t, h.Repo.Save(ctx(t), c))
	require.Equal(t, int64(3), c.CommittedVersion(), "Save marks committed")
	require.False(t, c.HasChanges())

	got := load(t, h, "c1")
	require.NotSame(t, c, got)
	require.Equal(t, "c1", got.ID())
	require.Equal(t, CounterType, got.Type())
	require.Equal(t, "first", got.Name())
	require.Equal(t, 7, got.Value())
	require.Equal(t, int64(3), got.Version())
	require.Equal(t, int64(3), got.CommittedVersion())
	require.False(t, got.HasChanges())

	// Save the loaded one again: an update of the existing row.
	require.NoError(t, got.Add(-2))
	require.NoError(t, h.Repo.Save(ctx(t), got))
	again := load(t, h, "c1")
	require.Equal(t, 5, again.Value())
	require.Equal(t, int64(4), again.Version())

	// Changing a loaded aggregate without saving changes nothing stored.
	require.NoError(t, again.Add(100))
	require.Equal(t, 5, load(t, h, "c1").Value())
}

func testNotFound(t *testing.T, h Harness) {
	_, err := h.Repo.Load(ctx(t), "missing")
	require.ErrorIs(t, err, aggregate.ErrNotFound)

	called := false
	err = h.Repo.Update(ctx(t), "missing", func(*Counter) error { called = true; return nil })
	require.ErrorIs(t, err, aggregate.ErrNotFound)
	require.False(t, called, "fn must not run for a missing aggregate")
	require.Empty(t, h.Events(t))
}

func testStaleVersion(t *testing.T, h Harness) {
	create(t, h, "c1", "x")
	a, b := load(t, h, "c1"), load(t, h, "c1")
	require.NoError(t, a.Add(1))
	require.NoError(t, h.Repo.Save(ctx(t), a))

	require.NoError(t, b.Add(5))
	require.NoError(t, b.Rename("y"))
	err := h.Repo.Save(ctx(t), b)
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	var ce *aggregate.ConflictError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, CounterType, ce.Type)
	require.Equal(t, "c1", ce.ID)
	require.Equal(t, int64(1), ce.Expected)
	require.Equal(t, int64(2), ce.Actual)

	// The loser is left as it was: still uncommitted, can be inspected.
	require.True(t, b.HasChanges())
	require.Equal(t, int64(1), b.CommittedVersion())

	got := load(t, h, "c1")
	require.Equal(t, 1, got.Value(), "the stale save wrote nothing")
	require.Equal(t, "x", got.Name())
	require.Equal(t, int64(2), got.Version())
	versions, _ := eventsOf(t, h, "c1")
	require.Equal(t, []int64{1, 2}, versions, "no event of the stale save")
}

func testDuplicateID(t *testing.T, h Harness) {
	create(t, h, "c1", "one")
	dup, err := NewCounter("c1", "two")
	require.NoError(t, err)
	err = h.Repo.Save(ctx(t), dup)
	require.ErrorIs(t, err, aggregate.ErrAlreadyExists)
	require.NotErrorIs(t, err, aggregate.ErrConcurrencyConflict, "a taken ID is not a conflict: no retry can cure it")
	var ae *aggregate.AlreadyExistsError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, CounterType, ae.Type)
	require.Equal(t, "c1", ae.ID)
	require.True(t, dup.IsNew())
	require.True(t, dup.HasChanges(), "the refused aggregate is left as it was")

	// Also when the new aggregate has recorded more events than the
	// stored one has (an event store could append the later ones).
	longer, err := NewCounter("c1", "three")
	require.NoError(t, err)
	require.NoError(t, longer.Add(1))
	require.NoError(t, longer.Add(2))
	require.ErrorIs(t, h.Repo.Save(ctx(t), longer), aggregate.ErrAlreadyExists)

	got := load(t, h, "c1")
	require.Equal(t, "one", got.Name())
	require.Equal(t, int64(1), got.Version())
	versions, _ := eventsOf(t, h, "c1")
	require.Equal(t, []int64{1}, versions)
}

func testNoChanges(t *testing.T, h Harness) {
	create(t, h, "c1", "x")
	c := load(t, h, "c1")
	require.NoError(t, h.Repo.Save(ctx(t), c))
	require.NoError(t, h.Repo.Update(ctx(t), "c1", func(*Counter) error { return nil }))
	require.Equal(t, int64(1), load(t, h, "c1").Version())
	require.Len(t, h.Events(t), 1)
}

func testUpdate(t *testing.T, h Harness) {
	create(t, h, "c1", "x")
	calls := 0
	var seen *Counter
	err := h.Repo.Update(ctx(t), "c1", func(c *Counter) error {
		calls++
		seen = c
		require.Equal(t, int64(1), c.Version())
		if err := c.Add(2); err != nil {
			return err
		}
		return c.Rename("renamed")
	})
	require.NoError(t, err)
	require.Equal(t, 1, calls)
	require.Equal(t, int64(3), seen.CommittedVersion(), "Update marks the aggregate committed")
	require.False(t, seen.HasChanges())

	got := load(t, h, "c1")
	require.Equal(t, 2, got.Value())
	require.Equal(t, "renamed", got.Name())
	require.Equal(t, int64(3), got.Version())
}

func testUpdateFnError(t *testing.T, h Harness) {
	create(t, h, "c1", "x")
	boom := errors.New("business rule violated")
	err := h.Repo.Update(ctx(t), "c1", func(c *Counter) error {
		if err := c.Add(9); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	// A domain error from fn comes back unchanged (no retry, no wrapping).
	require.Equal(t, boom, err)
	got := load(t, h, "c1")
	require.Equal(t, 0, got.Value())
	require.Equal(t, int64(1), got.Version())
	versions, _ := eventsOf(t, h, "c1")
	require.Equal(t, []int64{1}, versions)
}

func testUpdateConflictNoRetry(t *testing.T, h Harness) {
	if h.LocksOnUpdate {
		t.Skip("Update locks the aggregate; another writer inside fn would deadlock")
	}
	create(t, h, "c1", "x")
	// A writer that slips in between Update's load and save.
	var calls int
	err := h.Repo.Update(ctx(t), "c1", func(c *Counter) error {
		calls++
		other := load(t, h, "c1")
		require.NoError(t, other.Add(1))
		require.NoError(t, h.Repo.Save(ctx(t), other))
		return c.Add(5)
	})
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	require.Equal(t, 1, calls, "no retry unless configured")
	got := load(t, h, "c1")
	require.Equal(t, 1, got.Value(), "only the other writer's change is stored")
	versions, _ := eventsOf(t, h, "c1")
	require.Equal(t, []int64{1, 2}, versions)
}

func testEventsOnce(t *testing.T, h Harness) {
	c := create(t, h, "c1", "x")
	create(t, h, "c2", "y")
	for i := range 3 {
		require.NoError(t, h.Repo.Update(ctx(t), "c1", func(c *Counter) error { return c.Add(i + 1) }))
	}
	// Failures in between write no events.
	require.NoError(t, c.Add(1))
	require.ErrorIs(t, h.Repo.Save(ctx(t), c), aggregate.ErrConcurrencyConflict)
	require.Error(t, h.Repo.Update(ctx(t), "c1", func(c *Counter) error { _ = c.Add(1); return errors.New("no") }))
	require.NoError(t, h.Repo.Update(ctx(t), "c1", func(c *Counter) error { return c.Rename("z") }))

	versions, envs := eventsOf(t, h, "c1")
	require.Equal(t, seq(5), versions)
	names := make([]string, len(envs))
	for i, e := range envs {
		names[i] = e.Name
	}
	require.Equal(t, []string{
		CounterCreated{}.EventName(), CounterAdded{}.EventName(), CounterAdded{}.EventName(),
		CounterAdded{}.EventName(), CounterRenamed{}.EventName(),
	}, names)
	versions, _ = eventsOf(t, h, "c2")
	require.Equal(t, []int64{1}, versions)
	require.Len(t, h.Events(t), 6)
}

func testMetadata(t *testing.T, h Harness) {
	md := aggregate.Metadata{CorrelationID: "corr-1", CausationID: "cmd-1", Values: map[string]string{"tenant": "t1"}}
	mdCtx := aggregate.ContextWithMetadata(ctx(t), md)

	// A new aggregate recorded its event before the repository saw the
	// request: Save fills the metadata in.
	c, err := NewCounter("c1", "x")
	require.NoError(t, err)
	require.NoError(t, h.Repo.Save(mdCtx, c))

	// Update stamps the request's metadata before fn runs.
	require.NoError(t, h.Repo.Update(mdCtx, "c1", func(c *Counter) error { return c.Add(1) }))

	// Load does too, for handlers that load, change and save themselves.
	md2 := aggregate.Metadata{CorrelationID: "corr-2", CausationID: "cmd-2"}
	l, err := h.Repo.Load(aggregate.ContextWithMetadata(ctx(t), md2), "c1")
	require.NoError(t, err)
	require.NoError(t, l.Add(1))
	require.NoError(t, h.Repo.Save(ctx(t), l))

	// Metadata the aggregate already carries wins over the context's.
	own, err := NewCounter("c2", "y", aggregate.WithMetadata(aggregate.Metadata{CorrelationID: "own"}))
	require.NoError(t, err)
	require.NoError(t, h.Repo.Save(mdCtx, own))

	_, envs := eventsOf(t, h, "c1")
	require.Len(t, envs, 3)
	require.Equal(t, md, envs[0].Metadata)
	require.Equal(t, md, envs[1].Metadata)
	require.Equal(t, md2.CorrelationID, envs[2].Metadata.CorrelationID)
	require.Equal(t, md2.CausationID, envs[2].Metadata.CausationID)
	_, envs = eventsOf(t, h, "c2")
	require.Len(t, envs, 1)
	require.Equal(t, "own", envs[0].Metadata.CorrelationID)
	require.Equal(t, "cmd-1", envs[0].Metadata.CausationID, "empty fields are filled from the context")
}

// suiteTime is the time of the fake clock that LoadedAggregatesGetOptions
// configures; whole seconds, so that every store keeps it exactly.
var suiteTime = time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)

// testLoadOptions checks that every way of loading hands the aggregate the
// repository's options: events recorded after a load carry the configured
// clock's time (not time.Now) and the configured metadata, merged under
// the request's.
func testLoadOptions(t *testing.T, h Harness) {
	create(t, h, "c1", "x")

	checkEvent := func(t *testing.T, c *Counter, wantCorrelation string) {
		t.Helper()
		changes := c.Changes()
		require.NotEmpty(t, changes)
		e := changes[len(changes)-1]
		require.True(t, suiteTime.Equal(e.OccurredAt), "event recorded after a load stamped %s, want the configured clock's %s", e.OccurredAt, suiteTime)
		require.Equal(t, "suite", e.Metadata.Values["service"], "configured metadata")
		require.Equal(t, wantCorrelation, e.Metadata.CorrelationID, "the request's metadata")
		require.Equal(t, "configured", e.Metadata.CausationID, "empty fields of the request's metadata are filled from the configured one")
	}

	// Load, then record.
	loaded := load(t, h, "c1")
	require.NoError(t, loaded.Add(1))
	checkEvent(t, loaded, "")
	require.NoError(t, h.Repo.Save(ctx(t), loaded))

	// Update: fn records on a loaded aggregate.
	reqCtx := aggregate.ContextWithMetadata(ctx(t), aggregate.Metadata{CorrelationID: "req-1"})
	require.NoError(t, h.Repo.Update(reqCtx, "c1", func(c *Counter) error {
		if err := c.Add(2); err != nil {
			return err
		}
		checkEvent(t, c, "req-1")
		return nil
	}))

	// LoadByKey, where the repository has it.
	if kl, ok := h.Repo.(repository.KeyLoader[*Counter]); ok {
		byKey, err := kl.LoadByKey(reqCtx, "name", "x")
		require.NoError(t, err)
		require.NoError(t, byKey.Rename("y"))
		checkEvent(t, byKey, "req-1")
		require.NoError(t, h.Repo.Save(ctx(t), byKey))
	}

	// What reaches the outbox carries the clock's time too.
	_, envs := eventsOf(t, h, "c1")
	require.GreaterOrEqual(t, len(envs), 3)
	require.False(t, suiteTime.Equal(envs[0].OccurredAt), "created before any load")
	for _, e := range envs[1:] {
		require.True(t, suiteTime.Equal(e.OccurredAt), "event v%d in the outbox stamped %s, want %s", e.Version, e.OccurredAt, suiteTime)
	}
}

func testKeys(t *testing.T, h Harness) {
	kl, ok := h.Repo.(repository.KeyLoader[*Counter])
	if !ok {
		t.Skip("repository does not implement KeyLoader")
	}
	create(t, h, "c1", "alpha")
	got, err := kl.LoadByKey(ctx(t), "name", "alpha")
	require.NoError(t, err)
	require.Equal(t, "c1", got.ID())
	require.Equal(t, int64(1), got.CommittedVersion())
	_, err = kl.LoadByKey(ctx(t), "name", "beta")
	require.ErrorIs(t, err, aggregate.ErrNotFound)

	// A second aggregate with the same name is refused, and nothing of it
	// is stored.
	c2, err := NewCounter("c2", "alpha")
	require.NoError(t, err)
	err = h.Repo.Save(ctx(t), c2)
	require.ErrorIs(t, err, repository.ErrDuplicateKey)
	var de *repository.DuplicateKeyError
	require.ErrorAs(t, err, &de)
	require.Equal(t, repository.Key{Name: "name", Value: "alpha"}, de.Key)
	require.Equal(t, "c2", de.ID)
	require.True(t, c2.IsNew())
	_, err = h.Repo.Load(ctx(t), "c2")
	require.ErrorIs(t, err, aggregate.ErrNotFound)
	versions, _ := eventsOf(t, h, "c2")
	require.Empty(t, versions)

	// Renaming releases the old key and takes the new one.
	require.NoError(t, h.Repo.Update(ctx(t), "c1", func(c *Counter) error { return c.Rename("beta") }))
	_, err = kl.LoadByKey(ctx(t), "name", "alpha")
	require.ErrorIs(t, err, aggregate.ErrNotFound)
	got, err = kl.LoadByKey(ctx(t), "name", "beta")
	require.NoError(t, err)
	require.Equal(t, "c1", got.ID())
	require.NoError(t, h.Repo.Save(ctx(t), c2), "alpha is free again")

	// Renaming onto a taken name fails and leaves everything as it was.
	err = h.Repo.Update(ctx(t), "c2", func(c *Counter) error { return c.Rename("beta") })
	require.ErrorIs(t, err, repository.ErrDuplicateKey)
	require.Equal(t, "alpha", load(t, h, "c2").Name())
	got, err = kl.LoadByKey(ctx(t), "name", "alpha")
	require.NoError(t, err)
	require.Equal(t, "c2", got.ID())

	// Updates that keep the key keep it.
	require.NoError(t, h.Repo.Update(ctx(t), "c2", func(c *Counter) error { return c.Add(1) }))
	got, err = kl.LoadByKey(ctx(t), "name", "alpha")
	require.NoError(t, err)
	require.Equal(t, 1, got.Value())
}

// testLostUpdates runs 20 goroutines × 200 Updates over 5 counters through
// Update with retry. Every successful Update must be in the final state and
// its event in the outbox exactly once.
func testLostUpdates(t *testing.T, h Harness) {
	const aggregates = 5
	workers, perWorker := 20, 200
	if h.UpdatesPerWorker > 0 {
		perWorker = h.UpdatesPerWorker
	}
	if testing.Short() {
		perWorker = 20
	}
	for i := range aggregates {
		create(t, h, fmt.Sprintf("c%d", i), fmt.Sprintf("counter %d", i))
	}
	var ok, failed [aggregates]atomic.Int64
	var attempts atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				n := (w + i) % aggregates
				err := h.Repo.Update(ctx(t), fmt.Sprintf("c%d", n), func(c *Counter) error {
					attempts.Add(1)
					return c.Add(1)
				})
				switch {
				case err == nil:
					ok[n].Add(1)
				case errors.Is(err, aggregate.ErrConcurrencyConflict):
					failed[n].Add(1)
				default:
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var total, totalFailed int64
	for n := range aggregates {
		id := fmt.Sprintf("c%d", n)
		c := load(t, h, id)
		want := ok[n].Load()
		total += want
		totalFailed += failed[n].Load()
		require.Equal(t, 1+want, c.Version(), "%s: version = 1 + successful updates", id)
		require.Equal(t, int(want), c.Value(), "%s: value = successful updates", id)
		versions, _ := eventsOf(t, h, id)
		require.Equal(t, seq(1+want), versions, "%s: outbox holds versions 1..N exactly once, in order", id)
	}
	t.Logf("%d updates in %s: %d succeeded, %d gave up after retries, fn ran %d times (%.2f per update)",
		workers*perWorker, time.Since(start).Round(time.Millisecond), total, totalFailed,
		attempts.Load(), float64(attempts.Load())/float64(workers*perWorker))
}
