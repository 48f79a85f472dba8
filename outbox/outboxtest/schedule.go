package outboxtest

import (
	"context"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/outbox"
)

// This file holds the cases of deadlines (scheduled rows), run when the
// Harness has a Scheduler.

// deadlineEvent is the suite's deadline: an order event, so on the
// order topic.
func deadlineEvent(key string, n int) aggregate.Event { return orderPlaced{Order: key, N: n} }

func (s *suite) schedule(ctx context.Context, key string, at time.Time, n int) {
	s.t.Helper()
	if err := s.h.Scheduler.Schedule(ctx, key, at, deadlineEvent(key, n)); err != nil {
		s.t.Fatalf("Schedule %q: %v", key, err)
	}
}

func (s *suite) cancel(key string) bool {
	s.t.Helper()
	ok, err := s.h.Scheduler.Cancel(context.Background(), key)
	if err != nil {
		s.t.Fatalf("Cancel %q: %v", key, err)
	}
	return ok
}

// deadlineOf reads the key and number of a deadline's payload.
func (s *suite) deadlineOf(m Message) (key string, n int) {
	s.t.Helper()
	env, err := wire.FromMessage(m.Message)
	if err != nil {
		s.t.Fatalf("read %s: %v", m.UUID, err)
	}
	ev, err := s.h.Registry.DecodePayload(env.Name, 1, m.Payload)
	if err != nil {
		s.t.Fatalf("decode %s: %v", m.UUID, err)
	}
	o, ok := ev.(orderPlaced)
	if !ok {
		s.t.Fatalf("message %s is a %T, not the suite's deadline", m.UUID, ev)
	}
	return o.Order, o.N
}

// testDeadlineFires: a running relay with no poll to speak of wakes
// when a deadline is due and publishes it, not before, on its event
// type's topic, with the key as aggregate ID and the metadata of the
// scheduling context.
func testDeadlineFires(s *suite) {
	rec := &Recorder{}
	cfg := s.config()
	cfg.PollInterval = time.Hour // only the due time can wake it
	s.run(s.relay(nil, rec, cfg))

	md := aggregate.Metadata{CorrelationID: "corr-7", CausationID: "evt-6", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	ctx := aggregate.ContextWithMetadata(context.Background(), md)
	at := time.Now().Add(300 * time.Millisecond)
	s.schedule(ctx, "timeout-1", at, 1)
	if st := s.stats(); st.Scheduled != 1 || st.Pending != 0 {
		s.t.Fatalf("after Schedule: %+v, want 1 scheduled, 0 pending", st)
	}
	s.eventually(func() bool { return rec.Len() >= 1 }, "the deadline was not published")
	if now := time.Now(); now.Before(at) {
		s.t.Fatalf("published at %s, before its due time %s", now, at)
	}
	m := rec.Messages()[0]
	env, err := wire.FromMessage(m.Message)
	if err != nil {
		s.t.Fatal(err)
	}
	if m.Topic != s.h.Registry.Topic(order) || env.AggregateType != order || env.AggregateID != "timeout-1" || env.Name != (orderPlaced{}).EventName() {
		s.t.Errorf("deadline published as %+v on %q", env, m.Topic)
	}
	if env.Metadata.CorrelationID != md.CorrelationID || env.Metadata.CausationID != md.CausationID || env.Metadata.TraceParent != md.TraceParent {
		s.t.Errorf("metadata %+v, want the scheduling context's %+v", env.Metadata, md)
	}
	if key, n := s.deadlineOf(m); key != "timeout-1" || n != 1 {
		s.t.Errorf("payload of %q #%d", key, n)
	}
	s.eventually(func() bool { return s.statsAre(outbox.Stats{}) }, "nothing left after firing: %+v", s.stats())
	time.Sleep(50 * time.Millisecond)
	if rec.Len() != 1 {
		s.t.Errorf("%d messages, want the deadline once", rec.Len())
	}
}

// testDeadlineCancelReplace: scheduling a key again replaces its
// deadline; Cancel removes one and reports whether it did.
func testDeadlineCancelReplace(s *suite) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	past := time.Now().Add(-time.Second)
	s.schedule(ctx, "k-replaced", later, 1)
	s.schedule(ctx, "k-replaced", past, 2) // replaces #1, due at once
	s.schedule(ctx, "k-cancelled", past, 3)
	s.schedule(ctx, "k-later", later, 4)
	if st := s.stats(); st.Scheduled != 3 {
		s.t.Fatalf("%d scheduled, want 3 (one replaced)", st.Scheduled)
	}
	if !s.cancel("k-cancelled") {
		s.t.Error("Cancel of a scheduled key reported false")
	}
	if s.cancel("k-cancelled") || s.cancel("k-unknown") {
		s.t.Error("Cancel of a key with nothing scheduled reported true")
	}

	rec := &Recorder{}
	r := s.relay(nil, rec, s.config())
	if n := s.flush(r); n != 1 {
		s.t.Fatalf("Flush published %d events, want 1 (the replacement)", n)
	}
	if key, n := s.deadlineOf(rec.Messages()[0]); key != "k-replaced" || n != 2 {
		s.t.Errorf("published %q #%d, want k-replaced #2", key, n)
	}
	// Fired: no longer scheduled, so nothing to cancel.
	if s.cancel("k-replaced") {
		s.t.Error("Cancel of a fired deadline reported true")
	}
	if st := s.stats(); st.Scheduled != 1 || st.Pending != 0 {
		s.t.Errorf("after firing: %+v, want 1 scheduled (k-later)", st)
	}
	if !s.cancel("k-later") {
		s.t.Error("Cancel of k-later reported false")
	}
	if n := s.flush(r); n != 0 || rec.Len() != 1 {
		s.t.Errorf("Flush after cancelling everything published %d (total %d)", n, rec.Len())
	}
}

// testDeadlineHoldsNothingBack: a deadline that is not due holds back
// no event, not even those of an aggregate whose ID is its key.
func testDeadlineHoldsNothingBack(s *suite) {
	ctx := context.Background()
	s.schedule(ctx, "a0", time.Now().Add(time.Hour), 1)
	s.write(history(order, 2, 3)...)
	rec := &Recorder{}
	if n := s.flush(s.relay(nil, rec, s.config())); n != 6 {
		s.t.Fatalf("Flush published %d events, want the 6 written behind the scheduled row", n)
	}
	if dups := s.requireOrder(rec.Messages(), 2, 3); dups != 0 {
		s.t.Errorf("%d duplicates", dups)
	}
	if st := s.stats(); st.Scheduled != 1 {
		s.t.Errorf("%d scheduled, want 1", st.Scheduled)
	}
}

// testDeadlinesInDueOrder: deadlines that are due are published after
// what was pending before they became due, in the order of their due
// times (not of scheduling).
func testDeadlinesInDueOrder(s *suite) {
	ctx := context.Background()
	now := time.Now()
	s.write(event(cart, "c1", 1))
	s.schedule(ctx, "d3", now.Add(-1*time.Second), 3)
	s.schedule(ctx, "d1", now.Add(-3*time.Second), 1)
	s.schedule(ctx, "d2", now.Add(-2*time.Second), 2)
	s.write(event(cart, "c1", 2))
	rec := &Recorder{}
	if n := s.flush(s.relay(nil, rec, s.config())); n != 5 {
		s.t.Fatalf("Flush published %d events, want 5", n)
	}
	var got []string
	for _, m := range rec.Messages() {
		if m.Topic == s.h.Registry.Topic(order) {
			key, _ := s.deadlineOf(m)
			got = append(got, key)
		}
	}
	if len(got) != 3 || got[0] != "d1" || got[1] != "d2" || got[2] != "d3" {
		s.t.Errorf("deadlines published in the order %v, want [d1 d2 d3]", got)
	}
}
