package dddkittest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
)

// A small aggregate for the kit's own tests.

var errClosed = errors.New("counter closed")

type counter struct {
	aggregate.Root
	n      int
	closed bool
}

type added struct{ By int }

func (added) EventName() string { return "counter.added" }

type closedEvent struct{ Reason string }

func (closedEvent) EventName() string { return "counter.closed" }

func newCounter() *counter {
	c := &counter{}
	c.Init("c-1", "counter", c.apply)
	return c
}

func (c *counter) apply(e aggregate.Event) error {
	switch e := e.(type) {
	case added:
		c.n += e.By
	case closedEvent:
		c.closed = true
	default:
		return fmt.Errorf("unknown event %T", e)
	}
	return nil
}

func (c *counter) Add(by int) error {
	if c.closed {
		return fmt.Errorf("add %d: %w", by, errClosed)
	}
	return c.Record(added{By: by})
}

func (c *counter) Close(reason string) error {
	if c.closed {
		return nil
	}
	return c.Record(closedEvent{Reason: reason})
}

// fakeT records failures instead of failing the real test, so that the
// kit's failure paths can be asserted.
type fakeT struct {
	testing.TB // nil: calling anything not overridden panics
	errors     []string
	fatals     []string
}

func (f *fakeT) Helper()      {}
func (f *fakeT) Name() string { return "fake" }
func (f *fakeT) Errorf(format string, args ...any) {
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
}

func TestThenPassesOnTheRecordedEvents(t *testing.T) {
	t.Parallel()
	r := dddkittest.Aggregate(t, newCounter).
		Given(added{By: 2}, added{By: 3}).
		When(func(c *counter) error { return c.Add(4) }).
		Then(added{By: 4})
	require.Equal(t, 9, r.Aggregate().n, "the given history was applied before When")
	require.Equal(t, int64(3), r.Envelopes()[0].Version)
}

func TestThenWithNoEventsPassesWhenNothingIsRecorded(t *testing.T) {
	t.Parallel()
	dddkittest.Aggregate(t, newCounter).
		Given(closedEvent{Reason: "done"}).
		When(func(c *counter) error { return c.Close("again") }).
		Then()
}

func TestThenReportsADiffOnAPayloadMismatch(t *testing.T) {
	t.Parallel()
	ft := &fakeT{}
	dddkittest.Aggregate(ft, newCounter).
		When(func(c *counter) error { return c.Add(4) }).
		Then(added{By: 5})
	require.Len(t, ft.errors, 1)
	msg := ft.errors[0]
	require.Contains(t, msg, "Diff:")
	require.Contains(t, msg, "-  By: (int) 5")
	require.Contains(t, msg, "+  By: (int) 4")
}

func TestThenReportsAnEventOfTheWrongType(t *testing.T) {
	t.Parallel()
	ft := &fakeT{}
	dddkittest.Aggregate(ft, newCounter).
		When(func(c *counter) error { return c.Close("x") }).
		Then(added{By: 1})
	require.Len(t, ft.errors, 1)
	require.Contains(t, ft.errors[0], "dddkittest_test.added")
	require.Contains(t, ft.errors[0], "dddkittest_test.closedEvent")
}

func TestThenReportsAMissingAndAnExtraEvent(t *testing.T) {
	t.Parallel()
	ft := &fakeT{}
	dddkittest.Aggregate(ft, newCounter).
		When(func(c *counter) error { return c.Add(1) }).
		Then(added{By: 1}, added{By: 2})
	require.Len(t, ft.errors, 1, "a missing event fails")

	ft = &fakeT{}
	dddkittest.Aggregate(ft, newCounter).
		When(func(c *counter) error {
			if err := c.Add(1); err != nil {
				return err
			}
			return c.Add(2)
		}).
		Then(added{By: 1})
	require.Len(t, ft.errors, 1, "an extra event fails")

	ft = &fakeT{}
	dddkittest.Aggregate(ft, newCounter).
		When(func(c *counter) error { return c.Add(1) }).
		Then()
	require.Len(t, ft.errors, 1, "an event where none was expected fails")
}

func TestThenFailsWhenWhenReturnsAnError(t *testing.T) {
	t.Parallel()
	ft := &fakeT{}
	dddkittest.Aggregate(ft, newCounter).
		Given(closedEvent{}).
		When(func(c *counter) error { return c.Add(1) }).
		Then(added{By: 1})
	require.Len(t, ft.errors, 1)
	require.Contains(t, ft.errors[0], "counter closed")
}

func TestThenErrorMatchesWithErrorsIs(t *testing.T) {
	t.Parallel()
	dddkittest.Aggregate(t, newCounter).
		Given(closedEvent{}).
		When(func(c *counter) error { return c.Add(1) }).
		ThenError(errClosed)

	other := errors.New("other")
	ft := &fakeT{}
	dddkittest.Aggregate(ft, newCounter).
		Given(closedEvent{}).
		When(func(c *counter) error { return c.Add(1) }).
		ThenError(other)
	require.Len(t, ft.errors, 1, "a different error fails")
	require.Contains(t, ft.errors[0], "add 1: counter closed")

	ft = &fakeT{}
	dddkittest.Aggregate(ft, newCounter).
		When(func(c *counter) error { return c.Add(1) }).
		ThenError(errClosed)
	require.Len(t, ft.errors, 1, "no error fails")
	require.Contains(t, ft.errors[0], "counter.added")
}

func TestThenErrorFailsWhenEventsWereRecordedBeforeTheError(t *testing.T) {
	t.Parallel()
	ft := &fakeT{}
	dddkittest.Aggregate(ft, newCounter).
		When(func(c *counter) error {
			_ = c.Add(1)
			return errClosed
		}).
		ThenError(errClosed)
	require.Len(t, ft.errors, 1)
	require.Contains(t, ft.errors[0], "recorded counter.added")
}

func TestGivenThatCannotBeReplayedIsFatal(t *testing.T) {
	t.Parallel()
	ft := &fakeT{}
	called := false
	r := dddkittest.Aggregate(ft, newCounter).
		Given(unknown{}).
		When(func(*counter) error { called = true; return nil }).
		Then()
	require.False(t, called)
	require.Len(t, ft.fatals, 1)
	require.Contains(t, ft.fatals[0], "unknown event")
	require.Empty(t, ft.errors, "a broken Given does not also fail Then")
	require.Nil(t, r.Aggregate())
}

type unknown struct{}

func (unknown) EventName() string { return "counter.unknown" }

func TestOccurredAtComparesTimesFromTheClock(t *testing.T) {
	t.Parallel()
	clock := dddkittest.NewClock(time.Time{})
	dddkittest.Aggregate(t, newCounter).
		WithOptions(aggregate.WithClock(clock.Now)).
		Given(added{By: 1}).
		When(func(c *counter) error { return c.Add(1) }).
		Then(added{By: 1}).
		OccurredAt(dddkittest.T0)

	ft := &fakeT{}
	dddkittest.Aggregate(ft, newCounter).
		WithOptions(aggregate.WithClock(clock.Now)).
		When(func(c *counter) error { return c.Add(1) }).
		OccurredAt(dddkittest.T0.Add(time.Second))
	require.Len(t, ft.errors, 1)
	require.Contains(t, ft.errors[0], "occurred at 2026-03-01T12:00:00Z, want 2026-03-01T12:00:01Z")
}
