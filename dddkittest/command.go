package dddkittest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/outbox"
)

// Commands runs commands on a bus wired to in-memory adapters and checks
// what each command left in the outbox: the events its handler's
// repository saves, in the same step, into an [outbox.Memory]; and what
// the outbox's relay then publishes. Make one with [NewCommands] and
// send with [Send].
type Commands struct {
	t      testing.TB
	bus    *cqrs.Bus
	outbox *outbox.Memory

	mu        sync.Mutex
	relay     *outbox.Relay
	published *recorder
}

// NewCommands returns a [Commands] that sends on bus and watches ob, the
// outbox the handlers' repositories append to. Only the Commands may
// relay ob during the test ([Sent.ThenPublished] does), or events would
// leave it before they are checked.
func NewCommands(t testing.TB, bus *cqrs.Bus, ob *outbox.Memory) *Commands {
	return &Commands{t: t, bus: bus, outbox: ob}
}

// recorder is the publisher of the Commands' relay: it keeps every
// message with its topic.
type recorder struct {
	mu   sync.Mutex
	msgs []Published
	reg  interface {
		Decode(*message.Message) (aggregate.Envelope, error)
	}
}

func (r *recorder) Publish(topic string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		env, err := r.reg.Decode(m)
		if err != nil {
			return fmt.Errorf("dddkittest: a published message does not decode: %w", err)
		}
		r.msgs = append(r.msgs, Published{Topic: topic, Event: env})
	}
	return nil
}

func (r *recorder) Close() error { return nil }

// Published is an event the outbox's relay published.
type Published struct {
	// Topic is where it was published (the registry's topic of its
	// aggregate type).
	Topic string
	// Event is the published message decoded with the registry, as a
	// consumer receives it.
	Event aggregate.Envelope
}

// flush relays the outbox through the Commands' recording publisher, as
// the embedded mode's relay does, and returns everything published so
// far.
func (c *Commands) flush() ([]Published, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.relay == nil {
		reg := c.outbox.Registry()
		c.published = &recorder{reg: reg}
		relay, err := outbox.NewRelay(c.outbox, c.published, reg, nil)
		if err != nil {
			return nil, err
		}
		c.relay = relay
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.relay.Flush(ctx); err != nil {
		return nil, err
	}
	st, err := c.outbox.Stats(ctx)
	if err != nil {
		return nil, err
	}
	if st.Failed > 0 {
		return nil, fmt.Errorf("%d events failed to publish: %v", st.Failed, names(c.outbox.Failed()))
	}
	c.published.mu.Lock()
	defer c.published.mu.Unlock()
	return append([]Published(nil), c.published.msgs...), nil
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
	s := &Sent[R]{t: c.t, c: c}
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
	t         testing.TB
	c         *Commands
	result    R
	err       error
	added     []aggregate.Envelope
	published []Published
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

// ThenPublished relays the outbox, as the relay of a service running
// embedded does, and expects the command to have succeeded and exactly
// events to have been published for it, in order, compared by type and
// payload after a round trip through the registry's codec (what a
// consumer receives). It fails the test with a diff on a mismatch, and
// when an event cannot be published (not registered, no topic).
func (s *Sent[R]) ThenPublished(events ...aggregate.Event) *Sent[R] {
	s.t.Helper()
	if s.err != nil {
		s.t.Errorf("dddkittest: then published: want %d event(s), got error: %v", len(events), s.err)
		return s
	}
	all, err := s.c.flush()
	if err != nil {
		s.t.Errorf("dddkittest: then published: relay the outbox: %v", err)
		return s
	}
	ids := make(map[string]struct{}, len(s.added))
	for _, env := range s.added {
		ids[env.ID] = struct{}{}
	}
	s.published = s.published[:0]
	for _, p := range all {
		if _, ok := ids[p.Event.ID]; ok {
			s.published = append(s.published, p)
		}
	}
	got := make([]aggregate.Envelope, len(s.published))
	for i, p := range s.published {
		got[i] = p.Event
	}
	expectEvents(s.t, events, payloads(got), "dddkittest: then published: the events published for the command differ (-expected +published)")
	return s
}

// Published returns what [Sent.ThenPublished] found published for the
// command: each event decoded, with its topic.
func (s *Sent[R]) Published() []Published {
	return append([]Published(nil), s.published...)
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
