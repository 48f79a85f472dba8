package dddkittest

import (
	"context"
	"errors"
	"testing"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/outbox"
)

// Commands runs commands on a bus wired to in-memory adapters and checks
// what each command left in the outbox: the events its handler's
// repository saves, in the same step, into an [outbox.Memory]. Make one
// with [NewCommands] and send with [Send].
type Commands struct {
	t      testing.TB
	bus    *cqrs.Bus
	outbox *outbox.Memory
}

// NewCommands returns a [Commands] that sends on bus and watches ob, the
// outbox the handlers' repositories append to. No relay may drain ob
// during the test, or events would leave it before they are checked.
func NewCommands(t testing.TB, bus *cqrs.Bus, ob *outbox.Memory) *Commands {
	return &Commands{t: t, bus: bus, outbox: ob}
}

// Send sends cmd on the bus with [cqrs.Send] and returns what happened:
// the result, the error, and the events the command added to the outbox
// (those pending after it that were not pending before it).
func Send[R, C any](ctx context.Context, c *Commands, cmd C) *Sent[R] {
	c.t.Helper()
	before := make(map[string]struct{})
	for _, env := range c.outbox.Pending() {
		before[env.ID] = struct{}{}
	}
	s := &Sent[R]{t: c.t}
	s.result, s.err = cqrs.Send[R](ctx, c.bus, cmd)
	for _, env := range c.outbox.Pending() {
		if _, ok := before[env.ID]; !ok {
			s.added = append(s.added, env)
		}
	}
	return s
}

// Sent is what one command sent by [Send] did.
type Sent[R any] struct {
	t      testing.TB
	result R
	err    error
	added  []aggregate.Envelope
}

// ThenOutbox expects the command to have succeeded and the outbox to have
// gained exactly events, in order, compared by type and payload. On a
// mismatch it fails the test (Errorf) with a diff.
func (s *Sent[R]) ThenOutbox(events ...aggregate.Event) *Sent[R] {
	s.t.Helper()
	if s.err != nil {
		s.t.Errorf("dddkittest: then outbox: want %d event(s), got error: %v", len(events), s.err)
		return s
	}
	expectEvents(s.t, events, payloads(s.added), "dddkittest: then outbox: the events the command added differ (-expected +added)")
	return s
}

// ThenError expects the command to have failed with an error matching
// target ([errors.Is]) and to have added nothing to the outbox.
func (s *Sent[R]) ThenError(target error) *Sent[R] {
	s.t.Helper()
	switch {
	case s.err == nil:
		s.t.Errorf("dddkittest: then error: want %v, got no error (added %s)", target, names(s.added))
	case !errors.Is(s.err, target):
		s.t.Errorf("dddkittest: then error: want an error matching %v, got %v", target, s.err)
	case len(s.added) > 0:
		s.t.Errorf("dddkittest: then error: the error is right, but the command added %s to the outbox", names(s.added))
	}
	return s
}

// Result returns the command's result.
func (s *Sent[R]) Result() R { return s.result }

// Err returns the command's error.
func (s *Sent[R]) Err() error { return s.err }

// Outboxed returns the envelopes the command added to the outbox, oldest
// first.
func (s *Sent[R]) Outboxed() []aggregate.Envelope {
	return append([]aggregate.Envelope(nil), s.added...)
}
