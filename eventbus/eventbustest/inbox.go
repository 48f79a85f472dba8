package eventbustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

// InboxHarness is what the inbox suite needs from the inbox under test.
type InboxHarness struct {
	// Inbox is the inbox under test, with nothing recorded yet.
	Inbox eventbus.Inbox

	// Write stores an effect of a handler under key, with the context
	// the inbox gave the handler: in the inbox's transaction, when it has
	// one. The suite counts effects to see which runs of a handler
	// committed.
	Write func(ctx context.Context, key string) error

	// Effects returns the keys of the effects stored, one per Write that
	// stayed, in any order.
	Effects func(t testing.TB) []string

	// Atomic says that an effect commits and rolls back with the inbox's
	// record: a handler that fails leaves no effect behind. An inbox
	// without transactions ([eventbus.MemoryInbox]) leaves it false; the
	// suite then checks only that a failed run is not recorded (so that
	// it runs again).
	Atomic bool
}

// RunInbox runs the inbox suite as parallel subtests of t. newHarness is
// called once per subtest.
func RunInbox(t *testing.T, newHarness func(t *testing.T) InboxHarness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h InboxHarness)
	}{
		{"DuplicateDeliveriesApplyOnce", testInboxDuplicates},
		{"HandlersAreIndependent", testInboxHandlers},
		{"FailingHandlerRollsBack", testInboxFailure},
		{"PanickingHandlerRollsBack", testInboxPanic},
		{"ConcurrentDeliveriesApplyOnce", testInboxConcurrent},
		{"RefusesMissingIDs", testInboxMissingIDs},
		{"BatchRunsNewEventsInOrder", testInboxBatch},
		{"BatchFailureRollsBackEveryRecord", testInboxBatchFailure},
		{"OverlappingBatchesApplyEachEventOnce", testInboxOverlappingBatches},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if h.Inbox == nil || h.Write == nil || h.Effects == nil {
				t.Fatal("eventbustest: InboxHarness needs Inbox, Write and Effects")
			}
			tc.fn(t, h)
		})
	}
}

// inboxEvent is the payload of the suite's events.
type inboxEvent struct{ N int }

func (inboxEvent) EventName() string { return "test.inbox_event" }

// ev returns an envelope with event ID id.
func ev(id string) aggregate.Envelope {
	return aggregate.Envelope{
		ID: id, Name: "test.inbox_event", AggregateType: aggType, AggregateID: "agg-1", Version: 1,
		OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Payload: inboxEvent{N: 1},
	}
}

func count(keys []string, key string) int {
	n := 0
	for _, k := range keys {
		if k == key {
			n++
		}
	}
	return n
}

// writer returns a handler function that counts its runs and writes key.
func writer(h InboxHarness, runs *atomic.Int64, key string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		runs.Add(1)
		return h.Write(ctx, key)
	}
}

func testInboxDuplicates(t *testing.T, h InboxHarness) {
	ctx := context.Background()
	var runs atomic.Int64
	var applied []bool
	for range 3 {
		ok, err := h.Inbox.Process(ctx, "h", ev("e-1"), writer(h, &runs, "e-1"))
		must(t, err)
		applied = append(applied, ok)
	}
	check(t, fmt.Sprint(applied) == "[true false false]", "applied %v, want [true false false]", applied)
	check(t, runs.Load() == 1, "the handler ran %d times, want 1", runs.Load())
	check(t, count(h.Effects(t), "e-1") == 1, "effects %v, want e-1 once", h.Effects(t))
}

func testInboxHandlers(t *testing.T, h InboxHarness) {
	ctx := context.Background()
	var runs atomic.Int64
	for _, handler := range []string{"billing", "mails", "billing"} {
		_, err := h.Inbox.Process(ctx, handler, ev("e-1"), writer(h, &runs, handler))
		must(t, err)
	}
	effects := h.Effects(t)
	check(t, runs.Load() == 2, "the handlers ran %d times, want 2 (once each)", runs.Load())
	check(t, count(effects, "billing") == 1 && count(effects, "mails") == 1, "effects %v, want billing and mails once each", effects)
}

func testInboxFailure(t *testing.T, h InboxHarness) {
	ctx := context.Background()
	boom := errors.New("boom")
	applied, err := h.Inbox.Process(ctx, "h", ev("e-1"), func(ctx context.Context) error {
		if err := h.Write(ctx, "e-1"); err != nil {
			return err
		}
		return boom
	})
	check(t, errors.Is(err, boom), "error %v, want the handler's", err)
	check(t, !applied, "applied after a failure")
	if h.Atomic {
		check(t, count(h.Effects(t), "e-1") == 0, "effects %v after a failure, want none: the handler's write rolls back with the record", h.Effects(t))
	}

	var runs atomic.Int64
	applied, err = h.Inbox.Process(ctx, "h", ev("e-1"), writer(h, &runs, "e-1"))
	must(t, err)
	check(t, applied && runs.Load() == 1, "the retry: applied %v after %d runs, want applied after 1 (the failure was not recorded)", applied, runs.Load())
	if h.Atomic {
		check(t, count(h.Effects(t), "e-1") == 1, "effects %v, want e-1 once", h.Effects(t))
	}
	applied, err = h.Inbox.Process(ctx, "h", ev("e-1"), writer(h, &runs, "e-1"))
	must(t, err)
	check(t, !applied && runs.Load() == 1, "after the success: applied %v, %d runs; want a duplicate", applied, runs.Load())
}

func testInboxPanic(t *testing.T, h InboxHarness) {
	ctx := context.Background()
	func() {
		defer func() {
			check(t, recover() == "boom", "the panic did not come through")
		}()
		_, _ = h.Inbox.Process(ctx, "h", ev("e-1"), func(ctx context.Context) error {
			if err := h.Write(ctx, "e-1"); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if h.Atomic {
		check(t, count(h.Effects(t), "e-1") == 0, "effects %v after a panic, want none", h.Effects(t))
	}
	var runs atomic.Int64
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	applied, err := h.Inbox.Process(ctx, "h", ev("e-1"), writer(h, &runs, "e-1"))
	must(t, err)
	check(t, applied && runs.Load() == 1, "after the panic: applied %v, %d runs; want the event applied again", applied, runs.Load())
}

// Concurrent deliveries of one event (a rebalance hands a partition over
// mid-flight) apply it once.
func testInboxConcurrent(t *testing.T, h InboxHarness) {
	ctx := context.Background()
	var runs, applied atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ok, err := h.Inbox.Process(ctx, "h", ev("e-c"), func(ctx context.Context) error {
				runs.Add(1)
				time.Sleep(10 * time.Millisecond) // widen the window for a second run
				return h.Write(ctx, "e-c")
			})
			if err != nil {
				t.Errorf("process: %v", err)
			}
			if ok {
				applied.Add(1)
			}
		})
	}
	wg.Wait()
	check(t, runs.Load() == 1 && applied.Load() == 1, "8 concurrent deliveries: %d runs, %d applied; want 1 and 1", runs.Load(), applied.Load())
	check(t, count(h.Effects(t), "e-c") == 1, "effects %v, want e-c once", h.Effects(t))
}

func testInboxMissingIDs(t *testing.T, h InboxHarness) {
	ctx := context.Background()
	var runs atomic.Int64
	_, err := h.Inbox.Process(ctx, "h", ev(""), writer(h, &runs, "x"))
	check(t, errors.Is(err, eventbus.ErrPermanent), "no event ID: %v, want a permanent error", err)
	_, err = h.Inbox.Process(ctx, "", ev("e-1"), writer(h, &runs, "x"))
	check(t, errors.Is(err, eventbus.ErrPermanent), "no handler: %v, want a permanent error", err)
	err = h.Inbox.ProcessBatch(ctx, "h", []aggregate.Envelope{ev("e-1"), ev("")}, func(context.Context, []aggregate.Envelope) error {
		runs.Add(1)
		return nil
	})
	check(t, errors.Is(err, eventbus.ErrPermanent), "batch with an event without ID: %v, want a permanent error", err)
	check(t, runs.Load() == 0, "a handler ran %d times", runs.Load())
}

// ids returns the event IDs of envs.
func ids(envs []aggregate.Envelope) []string {
	out := make([]string, len(envs))
	for i, e := range envs {
		out[i] = e.ID
	}
	return out
}

func testInboxBatch(t *testing.T, h InboxHarness) {
	ctx := context.Background()
	var runs atomic.Int64
	_, err := h.Inbox.Process(ctx, "h", ev("b"), writer(h, &runs, "b"))
	must(t, err)

	var calls [][]string
	batch := func(envs ...aggregate.Envelope) {
		t.Helper()
		must(t, h.Inbox.ProcessBatch(ctx, "h", envs, func(ctx context.Context, fresh []aggregate.Envelope) error {
			calls = append(calls, ids(fresh))
			for _, e := range fresh {
				if e.Payload != (inboxEvent{N: 1}) {
					return fmt.Errorf("event %s lost its payload: %+v", e.ID, e.Payload)
				}
				if err := h.Write(ctx, e.ID); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	batch(ev("a"), ev("b"), ev("a"), ev("c"))
	batch(ev("c"), ev("d"), ev("a"))
	batch(ev("a"), ev("d"))
	check(t, fmt.Sprint(calls) == "[[a c] [d]]", "the handler got %v, want [[a c] [d]]: new events in order, each once, no call without one", calls)

	applied, err := h.Inbox.Process(ctx, "h", ev("a"), writer(h, &runs, "a"))
	must(t, err)
	check(t, !applied, "an event applied in a batch is a duplicate for Process")
	effects := h.Effects(t)
	slices.Sort(effects)
	check(t, fmt.Sprint(effects) == "[a b c d]", "effects %v, want [a b c d]", effects)
}

func testInboxBatchFailure(t *testing.T, h InboxHarness) {
	ctx := context.Background()
	boom := errors.New("boom")
	err := h.Inbox.ProcessBatch(ctx, "h", []aggregate.Envelope{ev("x"), ev("y")}, func(ctx context.Context, fresh []aggregate.Envelope) error {
		for _, e := range fresh {
			if err := h.Write(ctx, e.ID); err != nil {
				return err
			}
		}
		return boom
	})
	check(t, errors.Is(err, boom), "error %v, want the handler's", err)
	if h.Atomic {
		check(t, len(h.Effects(t)) == 0, "effects %v after a failed batch, want none", h.Effects(t))
	}
	var got []string
	must(t, h.Inbox.ProcessBatch(ctx, "h", []aggregate.Envelope{ev("y"), ev("x")}, func(_ context.Context, fresh []aggregate.Envelope) error {
		got = ids(fresh)
		return nil
	}))
	check(t, fmt.Sprint(got) == "[y x]", "after the failed batch the handler got %v, want [y x]: nothing was recorded", got)
}

// Two batches with the same events in opposite orders, at the same time,
// apply each event once (and do not deadlock).
func testInboxOverlappingBatches(t *testing.T, h InboxHarness) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	orders := [][]string{{"p", "q", "r"}, {"r", "q", "p"}, {"q", "s"}}
	var wg sync.WaitGroup
	for _, order := range orders {
		envs := make([]aggregate.Envelope, len(order))
		for i, id := range order {
			envs[i] = ev(id)
		}
		wg.Go(func() {
			err := h.Inbox.ProcessBatch(ctx, "h", envs, func(ctx context.Context, fresh []aggregate.Envelope) error {
				time.Sleep(10 * time.Millisecond) // widen the window for the other batches
				for _, e := range fresh {
					if err := h.Write(ctx, e.ID); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Errorf("batch %v: %v", ids(envs), err)
			}
		})
	}
	wg.Wait()
	effects := h.Effects(t)
	slices.Sort(effects)
	check(t, fmt.Sprint(effects) == "[p q r s]", "effects %v, want [p q r s]: each event once", effects)
}
