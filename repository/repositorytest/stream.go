package repositorytest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/repository"
)

// OtherType is the second aggregate type of the stream suite: counters
// of it are stored by a second event store of the same store (see
// [EventMappingOf]).
const OtherType = "repositorytest.other_counter"

// StreamHarness is one fresh, empty event store under test: its stream
// and a way to build the repositories that write into it.
type StreamHarness struct {
	// Stream is the store's stream under test. Its Wait must not return
	// on a timer within the suite's timeouts (configure any bounded wait
	// interval to a minute or more): the suite checks that writes wake
	// it.
	Stream repository.Stream
	// NewStore returns an event-sourced repository of mapping.Type
	// (CounterType or OtherType) in the store: its saves append to
	// Stream. It is called once per type.
	NewStore func(t testing.TB, mapping repository.EventMapping[*Counter]) repository.Repository[*Counter]
}

// RunStream runs the suite of the [repository.Stream] port and of
// [repository.Follow]: reading all events in one global order, filters,
// limits and positions, Head, Wait woken by writes, and a follower that
// sees every event of concurrent writers exactly once, in position order.
// newHarness is called once per subtest with the registry that knows
// Counter's events (for both types) and must return a store that shares
// nothing with the others (subtests run in parallel).
func RunStream(t *testing.T, newHarness func(t *testing.T, reg *eventbus.Registry) StreamHarness) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, h streamHarness)
	}{
		{"ReadAllInOrder", testReadAll},
		{"Filters", testFilters},
		{"AfterAndLimit", testAfterAndLimit},
		{"Head", testHead},
		{"WaitIsWokenByWrites", testWait},
		{"FollowCatchesUpThenFollows", testFollow},
		{"FollowStopsOnFnError", testFollowError},
		{"ConcurrentWritersSeenOnceInOrder", testConcurrentWriters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, Registry(t))
			require.NotNil(t, h.Stream, "harness without Stream")
			require.NotNil(t, h.NewStore, "harness without NewStore")
			tt.fn(t, streamHarness{
				stream:  h.Stream,
				counter: h.NewStore(t, EventMappingOf(CounterType)),
				other:   h.NewStore(t, EventMappingOf(OtherType)),
			})
		})
	}
}

type streamHarness struct {
	stream         repository.Stream
	counter, other repository.Repository[*Counter]
}

func (h streamHarness) repo(typ string) repository.Repository[*Counter] {
	if typ == OtherType {
		return h.other
	}
	return h.counter
}

// write saves a new counter of typ with adds added, and returns the
// events it recorded.
func (h streamHarness) write(t *testing.T, typ, id string, adds ...int) []aggregate.Envelope {
	t.Helper()
	c, err := NewCounterOfType(typ, id, id)
	require.NoError(t, err)
	for _, n := range adds {
		require.NoError(t, c.Add(n))
	}
	events := c.Changes()
	require.NoError(t, h.repo(typ).Save(ctx(t), c))
	return events
}

func readAll(t *testing.T, s repository.Stream, after int64, f repository.StreamFilter) []repository.StoredEvent {
	t.Helper()
	events, err := s.Read(ctx(t), after, f, 10_000)
	require.NoError(t, err)
	return events
}

// requireSame checks that got are the events want, in that order, with
// every field a reader needs, and positions strictly increasing.
func requireSame(t *testing.T, want []aggregate.Envelope, got []repository.StoredEvent) {
	t.Helper()
	require.Len(t, got, len(want))
	var last int64
	for i, g := range got {
		w := want[i]
		require.Greater(t, g.Position, last, "positions increase along the stream")
		last = g.Position
		require.False(t, g.RecordedAt.IsZero(), "RecordedAt is set")
		require.Equal(t, w.ID, g.Event.ID)
		require.Equal(t, w.Name, g.Event.Name)
		require.Equal(t, w.AggregateType, g.Event.AggregateType)
		require.Equal(t, w.AggregateID, g.Event.AggregateID)
		require.Equal(t, w.Version, g.Event.Version)
		require.Equal(t, w.Payload, g.Event.Payload, "the payload is decoded")
		require.Less(t, g.Event.OccurredAt.Sub(w.OccurredAt).Abs(), time.Microsecond, // a database keeps microseconds
			"OccurredAt %v, want %v", g.Event.OccurredAt, w.OccurredAt)
	}
}

func testReadAll(t *testing.T, h streamHarness) {
	require.Empty(t, readAll(t, h.stream, 0, repository.StreamFilter{}), "a new store's stream is empty")
	var want []aggregate.Envelope
	want = append(want, h.write(t, CounterType, "c1", 2, 3)...)
	want = append(want, h.write(t, OtherType, "o1", 5)...)
	md := aggregate.Metadata{CorrelationID: "corr", Values: map[string]string{"tenant": "t1"}}
	require.NoError(t, h.counter.Update(aggregate.ContextWithMetadata(ctx(t), md), "c1", func(c *Counter) error {
		if err := c.Rename("renamed"); err != nil {
			return err
		}
		want = append(want, c.Changes()...)
		return nil
	}))
	got := readAll(t, h.stream, 0, repository.StreamFilter{})
	requireSame(t, want, got)
	last := got[len(got)-1].Event
	require.Equal(t, "corr", last.Metadata.CorrelationID, "metadata is kept")
	require.Equal(t, "t1", last.Metadata.Values["tenant"])
	require.Equal(t, CounterRenamed{Name: "renamed"}, last.Payload)
}

func testFilters(t *testing.T, h streamHarness) {
	c1 := h.write(t, CounterType, "c1", 1, 2)
	o1 := h.write(t, OtherType, "o1", 3)
	c2 := h.write(t, CounterType, "c2")
	added := CounterAdded{}.EventName()
	created := CounterCreated{}.EventName()

	requireSame(t, []aggregate.Envelope{c1[1], c1[2], o1[1]},
		readAll(t, h.stream, 0, repository.StreamFilter{EventNames: []string{added}}))
	requireSame(t, o1, readAll(t, h.stream, 0, repository.StreamFilter{AggregateTypes: []string{OtherType}}))
	requireSame(t, []aggregate.Envelope{c1[0], c2[0]},
		readAll(t, h.stream, 0, repository.StreamFilter{EventNames: []string{created}, AggregateTypes: []string{CounterType}}))
	requireSame(t, []aggregate.Envelope{c1[0], o1[0], c2[0]},
		readAll(t, h.stream, 0, repository.StreamFilter{EventNames: []string{created, "no.such_event"}, AggregateTypes: []string{CounterType, OtherType}}))
	require.Empty(t, readAll(t, h.stream, 0, repository.StreamFilter{EventNames: []string{"no.such_event"}}))
	require.Empty(t, readAll(t, h.stream, 0, repository.StreamFilter{AggregateTypes: []string{"no_such_type"}}))
}

func testAfterAndLimit(t *testing.T, h streamHarness) {
	var want []aggregate.Envelope
	want = append(want, h.write(t, CounterType, "c1", 1, 2)...)
	want = append(want, h.write(t, OtherType, "o1", 3, 4)...)
	all := readAll(t, h.stream, 0, repository.StreamFilter{})
	requireSame(t, want, all)

	first, err := h.stream.Read(ctx(t), 0, repository.StreamFilter{}, 2)
	require.NoError(t, err)
	requireSame(t, want[:2], first)
	rest, err := h.stream.Read(ctx(t), first[1].Position, repository.StreamFilter{}, 100)
	require.NoError(t, err)
	requireSame(t, want[2:], rest)
	mid, err := h.stream.Read(ctx(t), all[2].Position, repository.StreamFilter{}, 2)
	require.NoError(t, err)
	requireSame(t, want[3:5], mid)
	require.Empty(t, readAll(t, h.stream, all[len(all)-1].Position, repository.StreamFilter{}))
	// A filtered read with a limit counts matching events only.
	added, err := h.stream.Read(ctx(t), 0, repository.StreamFilter{EventNames: []string{CounterAdded{}.EventName()}}, 3)
	require.NoError(t, err)
	requireSame(t, []aggregate.Envelope{want[1], want[2], want[4]}, added)

	for _, limit := range []int{0, -1} {
		_, err := h.stream.Read(ctx(t), 0, repository.StreamFilter{}, limit)
		require.Error(t, err, "limit %d", limit)
	}
}

func testHead(t *testing.T, h streamHarness) {
	head, err := h.stream.Head(ctx(t))
	require.NoError(t, err)
	require.Zero(t, head, "the head of an empty stream")
	h.write(t, CounterType, "c1", 1)
	h.write(t, OtherType, "o1")
	all := readAll(t, h.stream, 0, repository.StreamFilter{})
	head, err = h.stream.Head(ctx(t))
	require.NoError(t, err)
	require.Equal(t, all[len(all)-1].Position, head)
}

func testWait(t *testing.T, h streamHarness) {
	h.write(t, CounterType, "c1")
	head, err := h.stream.Head(ctx(t))
	require.NoError(t, err)

	// Events after the position: Wait returns at once.
	wctx, cancel := context.WithTimeout(ctx(t), 30*time.Second)
	defer cancel()
	require.NoError(t, h.stream.Wait(wctx, head-1))

	// Nothing after it: Wait ends with its context. (It may return
	// early, without an event: a notification of the write above can
	// arrive after that write returned. Then the reader waits again.)
	short, cancelShort := context.WithTimeout(ctx(t), 50*time.Millisecond)
	defer cancelShort()
	for {
		err := h.stream.Wait(short, head)
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			break
		}
		next, err := h.stream.Head(ctx(t))
		require.NoError(t, err)
		require.Equal(t, head, next, "Wait returned early: nothing was written after the head")
	}

	// A write from elsewhere wakes a waiting reader: it reads the new
	// event long before its context (30s) ends. Wait may return without
	// an event (the reader then reads and waits again), but it does not
	// poll on a timer (the harness sets any bounded interval beyond the
	// timeout), so only the write can end this loop in time.
	var wg sync.WaitGroup
	wg.Go(func() {
		time.Sleep(100 * time.Millisecond)
		c, err := NewCounterOfType(OtherType, "o1", "o1")
		if err == nil {
			err = h.other.Save(context.WithoutCancel(wctx), c)
		}
		if err != nil {
			t.Errorf("write: %v", err)
		}
	})
	defer wg.Wait()
	for {
		events, err := h.stream.Read(wctx, head, repository.StreamFilter{}, 10)
		require.NoError(t, err)
		if len(events) > 0 {
			require.Equal(t, "o1", events[0].Event.AggregateID)
			return
		}
		require.NoError(t, h.stream.Wait(wctx, head), "Wait must be woken by the write before its context ends")
	}
}

func testFollow(t *testing.T, h streamHarness) {
	// History before the follower starts, then live writes; the follower
	// wants counters only.
	var want []aggregate.Envelope
	want = append(want, h.write(t, CounterType, "c1", 1, 2, 3)...)
	h.write(t, OtherType, "o1", 1)
	want = append(want, h.write(t, CounterType, "c2")...)

	fctx, cancel := context.WithTimeout(ctx(t), 30*time.Second)
	defer cancel()
	var (
		mu      sync.Mutex
		got     []repository.StoredEvent
		batches int
		done    = make(chan error, 1)
		total   = len(want) + 3 // the live write below adds three counter events
	)
	go func() {
		done <- repository.Follow(fctx, h.stream, 0, repository.StreamFilter{AggregateTypes: []string{CounterType}}, 2,
			func(_ context.Context, events []repository.StoredEvent) error {
				mu.Lock()
				defer mu.Unlock()
				if len(events) > 2 {
					return fmt.Errorf("batch of %d events, want at most 2", len(events))
				}
				batches++
				got = append(got, events...)
				if len(got) >= total {
					cancel()
				}
				return nil
			})
	}()
	// Writes of the other type keep the stream busy; the follower skips them.
	for i := range 5 {
		h.write(t, OtherType, fmt.Sprintf("o-live-%d", i))
	}
	want = append(want, h.write(t, CounterType, "c3", 4, 5)...)
	err := <-done
	require.ErrorIs(t, err, context.Canceled, "Follow ends with its context")
	require.NoError(t, ctx(t).Err())
	mu.Lock()
	defer mu.Unlock()
	requireSame(t, want, got)
	require.GreaterOrEqual(t, batches, 4, "batches of at most 2 events")
}

func testFollowError(t *testing.T, h streamHarness) {
	h.write(t, CounterType, "c1", 1)
	boom := errors.New("boom")
	calls := 0
	err := repository.Follow(ctx(t), h.stream, 0, repository.StreamFilter{}, 1, func(context.Context, []repository.StoredEvent) error {
		calls++
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, 1, calls, "fn's error stops Follow")
	require.Error(t, repository.Follow(ctx(t), h.stream, 0, repository.StreamFilter{}, 0, func(context.Context, []repository.StoredEvent) error { return nil }))
}

// Concurrent writers, each updating its own counter; a follower started
// before them sees every event exactly once, in position order, and each
// aggregate's events in version order.
func testConcurrentWriters(t *testing.T, h streamHarness) {
	const writers, updates = 8, 40
	fctx, cancel := context.WithTimeout(ctx(t), 2*time.Minute)
	defer cancel()
	var got []repository.StoredEvent
	done := make(chan error, 1)
	go func() {
		done <- repository.Follow(fctx, h.stream, 0, repository.StreamFilter{}, 50, func(_ context.Context, events []repository.StoredEvent) error {
			got = append(got, events...)
			if len(got) >= writers*(updates+1) {
				cancel()
			}
			return nil
		})
	}()
	var wg sync.WaitGroup
	for w := range writers {
		typ := CounterType
		if w%2 == 1 {
			typ = OtherType
		}
		wg.Go(func() {
			id := fmt.Sprintf("w%d", w)
			c, err := NewCounterOfType(typ, id, id)
			if err == nil {
				err = h.repo(typ).Save(ctx(t), c)
			}
			for i := 0; err == nil && i < updates; i++ {
				// Not fctx: the follower cancels it on seeing the last
				// event, which can be before its writer has heard the
				// commit's answer.
				err = h.repo(typ).Update(ctx(t), id, func(c *Counter) error { return c.Add(i + 1) })
			}
			if err != nil {
				t.Errorf("writer %d: %v", w, err)
			}
		})
	}
	wg.Wait()
	err := <-done
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, ctx(t).Err(), "the follower saw every event before the test's deadline")
	require.Len(t, got, writers*(updates+1))
	seen := map[string]bool{}
	versions := map[string]int64{}
	var last int64
	for _, e := range got {
		require.Greater(t, e.Position, last)
		last = e.Position
		require.False(t, seen[e.Event.ID], "event %s seen twice", e.Event.ID)
		seen[e.Event.ID] = true
		key := e.Event.AggregateType + "/" + e.Event.AggregateID
		require.Equal(t, versions[key]+1, e.Event.Version, "%s: versions in order", key)
		versions[key] = e.Event.Version
	}
	require.Len(t, versions, writers)
}
