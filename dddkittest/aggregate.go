package dddkittest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/dddkit/dddkit/aggregate"
)

// Scenario is a given/when/then test of one aggregate type, started by
// [Aggregate].
type Scenario[A aggregate.Aggregate] struct {
	t      testing.TB
	newAgg func() A
	given  []aggregate.Event
	opts   []aggregate.Option
}

// Aggregate starts a scenario for the aggregate newAgg returns. newAgg
// must return a fresh aggregate whose Root is Init'ed (its ID, type and
// apply function set), with no uncommitted events.
func Aggregate[A aggregate.Aggregate](t testing.TB, newAgg func() A) *Scenario[A] {
	return &Scenario[A]{t: t, newAgg: newAgg}
}

// Given sets the aggregate's history: the events are replayed, in order,
// with [aggregate.Replay] before When runs. Calls add up.
func (s *Scenario[A]) Given(events ...aggregate.Event) *Scenario[A] {
	s.given = append(s.given, events...)
	return s
}

// WithOptions passes opts to [aggregate.Replay] (for example
// aggregate.WithClock(clock.Now)), as a repository does for an aggregate
// it loads.
func (s *Scenario[A]) WithOptions(opts ...aggregate.Option) *Scenario[A] {
	s.opts = append(s.opts, opts...)
	return s
}

// When builds the aggregate, replays the Given history and calls fn on it.
// The returned [Result] holds what fn recorded and returned; check it with
// Then or ThenError. When fails the test (Fatalf) if the history cannot be
// replayed; the Result then fails no further.
func (s *Scenario[A]) When(fn func(A) error) *Result[A] {
	s.t.Helper()
	r := &Result[A]{t: s.t}
	agg := s.newAgg()
	history := make([]aggregate.Envelope, len(s.given))
	for i, e := range s.given {
		history[i] = aggregate.Envelope{Payload: e}
		if e != nil {
			history[i].Name = e.EventName()
		}
	}
	if err := aggregate.Replay(agg, history, s.opts...); err != nil {
		s.t.Fatalf("dddkittest: given: %v", err)
		r.broken = true
		return r
	}
	r.agg = agg
	r.err = fn(agg)
	r.changes = agg.AggregateRoot().Changes()
	return r
}

// Result is what a scenario's When produced.
type Result[A aggregate.Aggregate] struct {
	t       testing.TB
	agg     A
	err     error
	changes []aggregate.Envelope
	broken  bool
}

// Then expects When to have succeeded and recorded exactly events, in
// order, compared by type and payload. On a mismatch it fails the test
// (Errorf) with a diff of the expected and recorded events.
func (r *Result[A]) Then(events ...aggregate.Event) *Result[A] {
	r.t.Helper()
	if r.broken {
		return r
	}
	if r.err != nil {
		r.t.Errorf("dddkittest: then: want %d event(s), got error: %v", len(events), r.err)
		return r
	}
	expectEvents(r.t, events, r.Events(), "dddkittest: then: the recorded events differ (-expected +recorded)")
	return r
}

// ThenError expects When to have returned an error matching target
// ([errors.Is]) and to have recorded no event.
func (r *Result[A]) ThenError(target error) *Result[A] {
	r.t.Helper()
	if r.broken {
		return r
	}
	switch {
	case r.err == nil:
		r.t.Errorf("dddkittest: then error: want %v, got no error (recorded %s)", target, names(r.changes))
	case !errors.Is(r.err, target):
		r.t.Errorf("dddkittest: then error: want an error matching %v, got %v", target, r.err)
	case len(r.changes) > 0:
		r.t.Errorf("dddkittest: then error: the error is right, but the aggregate recorded %s", names(r.changes))
	}
	return r
}

// OccurredAt expects every recorded event to carry the time want (the
// aggregate's clock at Record): use it when times matter.
func (r *Result[A]) OccurredAt(want time.Time) *Result[A] {
	r.t.Helper()
	if r.broken {
		return r
	}
	for _, env := range r.changes {
		if !env.OccurredAt.Equal(want) {
			r.t.Errorf("dddkittest: then: event %d (%s) occurred at %s, want %s", env.Version, env.Name, env.OccurredAt.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
	}
	return r
}

// Aggregate returns the aggregate after When, to check its state. It is
// the zero A when the history could not be replayed.
func (r *Result[A]) Aggregate() A { return r.agg }

// Err returns what When's function returned.
func (r *Result[A]) Err() error { return r.err }

// Events returns the payloads of the events When recorded, oldest first.
func (r *Result[A]) Events() []aggregate.Event { return payloads(r.changes) }

// Envelopes returns the envelopes of the events When recorded, oldest
// first (IDs, versions, times and metadata included).
func (r *Result[A]) Envelopes() []aggregate.Envelope {
	return append([]aggregate.Envelope(nil), r.changes...)
}

func names(envs []aggregate.Envelope) string {
	if len(envs) == 0 {
		return "no event"
	}
	s := ""
	for i, e := range envs {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s (%T)", e.Name, e.Payload)
	}
	return s
}

// expectEvents fails t, with a diff, unless got holds exactly want, in
// order, compared by type and value.
func expectEvents(t testing.TB, want, got []aggregate.Event, msg string) {
	t.Helper()
	if want == nil {
		want = []aggregate.Event{}
	}
	if got == nil {
		got = []aggregate.Event{}
	}
	assert.Equal(t, want, got, msg)
}

func payloads(envs []aggregate.Envelope) []aggregate.Event {
	out := make([]aggregate.Event, len(envs))
	for i, env := range envs {
		out[i] = env.Payload
	}
	return out
}
