package outboxtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/retry"
)

// testOrder: 12 aggregates × 10 versions written by four concurrent
// writers reach the publisher in order per aggregate, each on its
// aggregate type's topic, once.
func testOrder(s *suite) {
	rec := &Recorder{}
	cfg := s.config()
	cfg.BatchSize = 7
	s.run(s.relay(nil, rec, cfg))

	events := append(history(cart, 12, 10), history(order, 3, 10)...)
	s.writeConcurrently(events, 4, 3)
	s.eventually(func() bool { return rec.Len() >= len(events) }, "%d of %d events published", rec.Len(), len(events))
	msgs := rec.Messages()
	if dups := s.requireOrder(msgs, 15, 10); dups != 0 {
		s.t.Errorf("%d duplicates without any failure", dups)
	}
	for _, m := range msgs {
		if want := s.h.Registry.Topic(m.Metadata.Get(wire.HeaderAggregateType)); m.Topic != want {
			s.t.Fatalf("event of a %s on topic %q, want %q", m.Metadata.Get(wire.HeaderAggregateType), m.Topic, want)
		}
	}
	s.eventually(func() bool { return s.statsAre(outbox.Stats{}) }, "nothing pending after publishing: %+v", s.stats())
}

// testMessage: the message carries the event (ID, name, aggregate,
// version, time, metadata), its payload as written, and the payload's
// schema version.
func testMessage(s *suite) {
	at := time.Date(2026, 3, 1, 12, 30, 0, 123456000, time.UTC) // microseconds, as PostgreSQL keeps them
	e1 := event(cart, "c1", 1)
	e1.OccurredAt = at
	e1.Metadata = aggregate.Metadata{CorrelationID: "corr-1", CausationID: "cmd-1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Values: map[string]string{"tenant": "acme"}}
	e2 := event(cart, "c1", 2)
	e2.Name, e2.Payload = itemRemoved{}.EventName(), itemRemoved{SKU: "x", Quantity: 3}
	s.write(e1, e2)

	rec := &Recorder{}
	if n := s.flush(s.relay(nil, rec, s.config())); n != 2 {
		s.t.Fatalf("Flush published %d events, want 2", n)
	}
	msgs := rec.Messages()
	if len(msgs) != 2 {
		s.t.Fatalf("%d messages, want 2", len(msgs))
	}
	got, err := wire.FromMessage(msgs[0].Message)
	if err != nil {
		s.t.Fatal(err)
	}
	want := e1
	want.Payload = nil
	if msgs[0].UUID != e1.ID || got.ID != want.ID || got.Name != want.Name || got.AggregateType != want.AggregateType ||
		got.AggregateID != want.AggregateID || got.Version != want.Version || !got.OccurredAt.Equal(at) {
		s.t.Errorf("message of %+v (UUID %s) read back as %+v", want, msgs[0].UUID, got)
	}
	if md := got.Metadata; md.CorrelationID != "corr-1" || md.CausationID != "cmd-1" || md.TraceParent != e1.Metadata.TraceParent ||
		len(md.Values) != 1 || md.Values["tenant"] != "acme" {
		s.t.Errorf("metadata %+v, want %+v", md, e1.Metadata)
	}
	if msgs[0].Topic != s.h.Registry.Topic(cart) {
		s.t.Errorf("topic %q, want %q", msgs[0].Topic, s.h.Registry.Topic(cart))
	}
	for i, c := range []struct{ version, payload string }{
		{"1", `{"sku":"c1","n":1}`},
		{"2", `{"sku":"x","quantity":3}`},
	} {
		if v := msgs[i].Metadata.Get(wire.HeaderEventVersion); v != c.version {
			s.t.Errorf("event %d: schema version header %q, want %q", i+1, v, c.version)
		}
		var a, b any
		if err := json.Unmarshal(msgs[i].Payload, &a); err != nil {
			s.t.Fatalf("event %d: payload %q: %v", i+1, msgs[i].Payload, err)
		}
		_ = json.Unmarshal([]byte(c.payload), &b)
		if ja, jb := canonicalJSON(a), canonicalJSON(b); ja != jb {
			s.t.Errorf("event %d: payload %s, want %s", i+1, ja, jb)
		}
	}
}

// canonicalJSON encodes a decoded JSON value again, with sorted keys.
func canonicalJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// testWakes: with an hour-long poll interval, each write reaches the
// publisher because the Source wakes the relay.
func testWakes(s *suite) {
	rec := &Recorder{}
	leader := make(chan bool, 10)
	cfg := s.config()
	cfg.PollInterval = time.Hour
	cfg.Hooks.OnLeader = func(l bool) { leader <- l }
	r := s.relay(nil, rec, cfg)
	s.run(r)
	select {
	case l := <-leader:
		if !l || !r.IsLeader() {
			s.t.Fatal("the only relay does not lead")
		}
	case <-time.After(s.h.Timeout):
		s.t.Fatal("the relay did not become the leader")
	}
	for i := range 5 {
		s.write(event(cart, "w", int64(i+1)))
		s.eventually(func() bool { return rec.Len() == i+1 }, "write %d published without a poll (PollInterval is 1h)", i+1)
	}
}

// testPoison: the publisher refuses every event of cart a3. Its first
// event ends failed after Retry.MaxAttempts; its later events wait behind
// it; the other aggregates flow. The operator's retry releases a3, in
// order.
func testPoison(s *suite) {
	rec := &Recorder{}
	rec.Refuse(refuseAggregate(cart, "a3"))
	var (
		mu     sync.Mutex
		finals []outbox.AttemptFailure
	)
	cfg := s.config()
	cfg.BatchSize = 25
	cfg.Retry.MaxAttempts = 3
	cfg.Hooks.OnAttemptFailed = func(f outbox.AttemptFailure) {
		if f.Final {
			mu.Lock()
			finals = append(finals, f)
			mu.Unlock()
		}
	}
	r := s.relay(nil, rec, cfg)
	s.run(r)
	for c := range slices.Chunk(history(cart, 10, 5), 7) {
		s.write(c...)
	}
	s.eventually(func() bool { return s.statsAre(outbox.Stats{Pending: 4, Failed: 1}) },
		"a3 v1 failed, a3 v2..v5 pending: %+v", s.stats())
	s.eventually(func() bool { return rec.Len() == 45 }, "the 45 events of the other aggregates published: %d", rec.Len())

	mu.Lock()
	if len(finals) != 1 {
		s.t.Fatalf("%d events failed for good, want 1", len(finals))
	}
	f := finals[0]
	mu.Unlock()
	if f.Event.AggregateID != "a3" || f.Event.Version != 1 || f.Attempts != 3 || f.RetryIn != 0 || f.Err == nil ||
		!strings.Contains(f.Err.Error(), "poison") {
		s.t.Errorf("final failure %+v, want a3 v1 after 3 attempts with the publisher's error", f)
	}
	for _, m := range rec.Messages() {
		if m.Metadata.Get(wire.HeaderAggregateID) == "a3" {
			s.t.Fatalf("an event of a3 was published while a3 v1 failed: version %s", m.Metadata.Get(wire.HeaderAggregateVersion))
		}
	}
	st, err := r.Stats(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	if st.OldestPending <= 0 {
		s.t.Errorf("Relay.Stats: OldestPending is %s with events pending", st.OldestPending)
	}

	// The operator fixes the cause and retries.
	rec.Refuse(nil)
	n, err := s.h.Retry(context.Background())
	if err != nil || n != 1 {
		s.t.Fatalf("Retry: %d, %v; want 1 event retried", n, err)
	}
	s.eventually(func() bool { return rec.Len() == 50 }, "all 50 published after the retry: %d", rec.Len())
	if dups := s.requireOrder(rec.Messages(), 10, 5); dups != 0 {
		s.t.Errorf("%d duplicates", dups)
	}
	s.eventually(func() bool { return s.statsAre(outbox.Stats{}) }, "nothing pending or failed: %+v", s.stats())
}

// testAcrossTopics: one batch holds carts and orders (two topics; cart
// a0 and order a0 are different aggregates). The publisher refuses cart
// a0 v1: cart a0 waits, every other aggregate on both topics is
// published; cart a0 stays held until its retry is due.
func testAcrossTopics(s *suite) {
	var events []aggregate.Envelope
	for v := int64(1); v <= 3; v++ {
		for _, id := range []string{"a0", "a1"} {
			events = append(events, event(cart, id, v), event(order, id, v))
		}
	}
	s.write(events...)
	rec := &Recorder{}
	rec.Refuse(func(topic string, m *message.Message) error {
		if m.Metadata.Get(wire.HeaderAggregateType) == cart && m.Metadata.Get(wire.HeaderAggregateID) == "a0" &&
			m.Metadata.Get(wire.HeaderAggregateVersion) == "1" {
			return errors.New("poison: cart a0 v1")
		}
		return nil
	})
	cfg := s.config()
	cfg.Retry = retry.Policy{MaxAttempts: 5, BaseDelay: time.Hour}
	r := s.relay(nil, rec, cfg)

	if n := s.flush(r); n != 9 {
		s.t.Fatalf("Flush published %d events, want 9 (all but cart a0's 3)", n)
	}
	check := NewOrderCheck()
	for _, m := range rec.Messages() {
		typ, id := m.Metadata.Get(wire.HeaderAggregateType), m.Metadata.Get(wire.HeaderAggregateID)
		if typ == cart && id == "a0" {
			s.t.Fatalf("cart a0 v%s published behind its failed v1", m.Metadata.Get(wire.HeaderAggregateVersion))
		}
		if m.Topic != s.h.Registry.Topic(typ) {
			s.t.Fatalf("event of a %s on topic %q", typ, m.Topic)
		}
		if err := check.AddMessage(m.Message); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := check.Complete(3, 3); err != nil {
		s.t.Fatal(err)
	}
	if !s.statsAre(outbox.Stats{Pending: 3, Retrying: 1}) {
		s.t.Fatalf("Stats %+v, want cart a0's 3 events pending, 1 retrying", s.stats())
	}
	if n := s.flush(r); n != 0 {
		s.t.Fatalf("Flush published %d events while cart a0 v1 waits for its retry", n)
	}
}

// testOutage: the publisher fails everything for a while. The relay
// reports it and retries; nothing is lost or reordered, nothing ends
// failed.
func testOutage(s *suite) {
	rec := &Recorder{}
	rec.Refuse(func(string, *message.Message) error { return errDown })
	var reported, finals atomic.Int32
	cfg := s.config()
	cfg.BatchSize = 100
	cfg.Retry.MaxDelay = time.Second // growing waits: 20ms, 40ms, 80ms, …
	cfg.Hooks.OnError = func(error) { reported.Add(1) }
	cfg.Hooks.OnAttemptFailed = func(f outbox.AttemptFailure) {
		if f.Final {
			finals.Add(1)
		}
	}
	s.run(s.relay(nil, rec, cfg))
	for c := range slices.Chunk(history(cart, 40, 10), 50) {
		s.write(c...)
	}
	s.eventually(func() bool { return reported.Load() > 0 }, "outage reported through Hooks.OnError")
	if rec.Calls() == 0 || rec.Len() != 0 {
		s.t.Fatalf("%d publish calls, %d messages accepted; want refused calls only", rec.Calls(), rec.Len())
	}
	rec.Refuse(nil)
	s.eventually(func() bool { return rec.Len() >= 400 }, "all 400 published after the outage: %d", rec.Len())
	s.requireOrder(rec.Messages(), 40, 10)
	s.eventually(func() bool { return s.statsAre(outbox.Stats{}) }, "nothing pending or failed: %+v", s.stats())
	if n := finals.Load(); n != 0 {
		s.t.Errorf("%d events failed for good during a short outage", n)
	}
}

// testOutageFlush: when the publish of several aggregates in a row fails
// and none succeeds, the relay takes it for an outage and ends the batch
// instead of trying every aggregate: three aggregates get an attempt.
func testOutageFlush(s *suite) {
	s.write(history(cart, 5, 2)...)
	rec := &Recorder{}
	rec.Refuse(func(string, *message.Message) error { return errDown })
	cfg := s.config()
	cfg.Retry = retry.Policy{MaxAttempts: 5, BaseDelay: time.Nanosecond}
	r := s.relay(nil, rec, cfg)
	n, err := r.Flush(context.Background())
	if err == nil || !strings.Contains(err.Error(), "several aggregates in a row") || n != 0 {
		s.t.Fatalf("Flush during an outage: %d, %v; want 0 and the outage", n, err)
	}
	if !s.statsAre(outbox.Stats{Pending: 10, Retrying: 3}) {
		s.t.Fatalf("Stats %+v, want 10 pending of which 3 retrying (three aggregates tried)", s.stats())
	}
	rec.Refuse(nil)
	if n := s.flush(r); n != 10 {
		s.t.Fatalf("Flush after the outage published %d, want 10", n)
	}
	s.requireOrder(rec.Messages(), 5, 2)
}

// leaders counts the relays that lead at once, through their OnLeader
// hooks.
type leaders struct {
	now, most, changes atomic.Int32
}

func (l *leaders) hook(lead bool) {
	if !lead {
		l.now.Add(-1)
		return
	}
	l.changes.Add(1)
	n := l.now.Add(1)
	for {
		m := l.most.Load()
		if n <= m || l.most.CompareAndSwap(m, n) {
			return
		}
	}
}

// testOneLeader: three relays (one per replica) on one outbox: one
// leads, the events go out in order, once.
func testOneLeader(s *suite) {
	rec := &Recorder{}
	var l leaders
	relays := make([]*outbox.Relay, 3)
	for i := range relays {
		cfg := s.config()
		cfg.BatchSize = 5
		cfg.Hooks.OnLeader = l.hook
		relays[i] = s.relay(s.replica(), rec, cfg)
		s.run(relays[i])
	}
	s.eventually(func() bool { return l.now.Load() == 1 }, "one relay leads")
	events := history(cart, 20, 10)
	s.writeConcurrently(events, 4, 5)
	s.eventually(func() bool { return rec.Len() >= len(events) }, "%d of %d published", rec.Len(), len(events))
	if dups := s.requireOrder(rec.Messages(), 20, 10); dups != 0 {
		s.t.Errorf("%d duplicates without any failure", dups)
	}
	if m := l.most.Load(); m != 1 {
		s.t.Errorf("%d relays led at once", m)
	}
	leading := 0
	for _, r := range relays {
		if r.IsLeader() {
			leading++
		}
	}
	if leading != 1 || l.changes.Load() != 1 {
		s.t.Errorf("%d relays lead now after %d changes of leader, want 1 and 1", leading, l.changes.Load())
	}
}

// testFailover: three relays; the leader is stopped while events are
// being written, another takes over and publishes the rest, in order;
// then the second leader is stopped too.
func testFailover(s *suite) {
	rec := &Recorder{}
	var l leaders
	relays := make([]*outbox.Relay, 3)
	stops := make([]func(), 3)
	for i := range relays {
		cfg := s.config()
		cfg.BatchSize = 20
		cfg.Hooks.OnLeader = l.hook
		relays[i] = s.relay(s.replica(), rec, cfg)
		stops[i] = s.run(relays[i])
	}
	s.eventually(func() bool { return l.now.Load() == 1 }, "one relay leads")
	stopLeader := func() {
		s.t.Helper()
		for i, r := range relays {
			if r.IsLeader() {
				stops[i]()
				return
			}
		}
		s.t.Fatal("no relay leads")
	}

	events := history(cart, 20, 30)
	first, second, third := events[:300], events[300:450], events[450:]
	var wg sync.WaitGroup
	wg.Go(func() {
		for c := range slices.Chunk(first, 10) {
			if err := s.h.Write(context.Background(), c...); err != nil {
				s.t.Errorf("write: %v", err)
				return
			}
			time.Sleep(time.Millisecond) // keep the leader busy while it is stopped
		}
	})
	s.eventually(func() bool { return rec.Len() >= 100 }, "progress before the stop: %d", rec.Len())
	stopLeader()
	wg.Wait()
	if s.t.Failed() {
		s.t.FailNow()
	}
	s.eventually(func() bool { return l.changes.Load() == 2 && l.now.Load() == 1 }, "a second relay leads")
	for c := range slices.Chunk(second, 10) {
		s.write(c...)
	}
	s.eventually(func() bool { return s.statsAre(outbox.Stats{}) && rec.Len() >= 450 }, "%d of 450 published", rec.Len())
	stopLeader()
	s.eventually(func() bool { return l.changes.Load() == 3 && l.now.Load() == 1 }, "the third relay leads")
	for c := range slices.Chunk(third, 10) {
		s.write(c...)
	}
	s.eventually(func() bool { return s.statsAre(outbox.Stats{}) && rec.Len() >= len(events) }, "%d of %d published", rec.Len(), len(events))
	dups := s.requireOrder(rec.Messages(), 20, 30)
	if m := l.most.Load(); m != 1 {
		s.t.Errorf("%d relays led at once", m)
	}
	s.t.Logf("%d events through 2 stopped leaders, %d duplicates", len(events), dups)
}

// testRunTwice: a second Run of a running relay returns ErrRelayRunning;
// Run returns nil once its context ends, the relay no longer leads and
// another relay can lead the Source.
func testRunTwice(s *suite) {
	r := s.relay(nil, &Recorder{}, s.config())
	stop := s.run(r)
	s.eventually(r.IsLeader, "the relay leads")
	if err := r.Run(context.Background()); !errors.Is(err, outbox.ErrRelayRunning) {
		s.t.Fatalf("second Run: %v, want ErrRelayRunning", err)
	}
	stop()
	if r.IsLeader() {
		s.t.Fatal("a stopped relay still leads")
	}
	next := s.relay(s.replica(), &Recorder{}, s.config())
	s.run(next)
	s.eventually(next.IsLeader, "another relay leads after the first stopped")
}

// blockingPublisher blocks each publish until gate closes.
type blockingPublisher struct {
	Recorder
	entered chan struct{}
	gate    chan struct{}
}

func (p *blockingPublisher) Publish(topic string, msgs ...*message.Message) error {
	select {
	case p.entered <- struct{}{}:
	default:
	}
	<-p.gate
	return p.Recorder.Publish(topic, msgs...)
}

// testInFlight: Run's context ends while a publish is in flight; the
// batch finishes and is recorded as published before Run returns.
func testInFlight(s *suite) {
	pub := &blockingPublisher{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	var published atomic.Int32
	cfg := s.config()
	cfg.ShutdownTimeout = time.Minute
	cfg.Hooks.OnPublished = func(evs []aggregate.Envelope, _ time.Duration) { published.Add(int32(len(evs))) }
	r := s.relay(nil, pub, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	s.write(event(cart, "s1", 1), event(cart, "s1", 2))
	select {
	case <-pub.entered: // the relay is now blocked in Publish
	case <-time.After(s.h.Timeout):
		close(pub.gate)
		cancel()
		s.t.Fatal("the relay did not publish")
	}
	cancel()
	time.Sleep(50 * time.Millisecond) // let the cancellation reach the relay
	close(pub.gate)
	select {
	case err := <-done:
		if err != nil {
			s.t.Fatalf("Run: %v", err)
		}
	case <-time.After(s.h.Timeout):
		s.t.Fatal("Run did not return")
	}
	if n := published.Load(); n != 2 || pub.Len() != 2 {
		s.t.Fatalf("%d events reported published, %d accepted; want the batch of 2", n, pub.Len())
	}
	if !s.statsAre(outbox.Stats{}) {
		s.t.Fatalf("Stats %+v after Run returned: the batch in flight was not recorded as published", s.stats())
	}
	rec := &Recorder{}
	if n := s.flush(s.relay(nil, rec, s.config())); n != 0 {
		s.t.Fatalf("a later relay published %d events again", n)
	}
}

// testRefuses: a write with an event the outbox cannot store (a field
// missing, a name that is not its payload's, a type not in the registry,
// an event ID already in the outbox) is refused whole: nothing of it is
// stored or published.
func testRefuses(s *suite) {
	ctx := context.Background()
	ok := event(cart, "ok", 1)
	s.write(ok)

	missing := event(cart, "c1", 1)
	missing.ID, missing.AggregateID = "", ""
	noPayload := event(cart, "c1", 1)
	noPayload.Payload = nil
	wrongName := event(cart, "c1", 1)
	wrongName.Name = "outboxtest.something_else"
	unregistered := event(cart, "c1", 1)
	unregistered.Name, unregistered.Payload = notRegistered{}.EventName(), notRegistered{X: 1}

	for _, c := range []struct {
		name  string
		event aggregate.Envelope
		is    []error
		says  string
	}{
		{"missing fields", missing, []error{outbox.ErrInvalidEvent}, "missing ID, AggregateID"},
		{"no payload", noPayload, []error{outbox.ErrInvalidEvent}, "Payload"},
		{"name not the payload's", wrongName, []error{outbox.ErrInvalidEvent}, "outboxtest.item_added"},
		{"unregistered type", unregistered, []error{outbox.ErrInvalidEvent, eventbus.ErrNotRegistered}, "outboxtest.not_registered"},
	} {
		err := s.h.Write(ctx, event(cart, "c0", 1), c.event)
		for _, target := range c.is {
			if !errors.Is(err, target) {
				s.t.Errorf("%s: Write returned %v, want it to wrap %v", c.name, err, target)
			}
		}
		if err != nil && !strings.Contains(err.Error(), c.says) {
			s.t.Errorf("%s: %q does not say %q", c.name, err, c.says)
		}
	}
	dup := event(cart, "d", 1)
	if err := s.h.Write(ctx, event(cart, "c0", 1), dup, dup); err == nil {
		s.t.Error("a write with one event ID twice was accepted")
	}
	if err := s.h.Write(ctx, event(cart, "c0", 1), ok); err == nil {
		s.t.Error("a write of an event ID still in the outbox was accepted")
	}
	if err := s.h.Write(ctx); err != nil {
		s.t.Errorf("a write of no events: %v", err)
	}

	if !s.statsAre(outbox.Stats{Pending: 1}) {
		s.t.Fatalf("Stats %+v after refused writes, want the one accepted event", s.stats())
	}
	rec := &Recorder{}
	if n := s.flush(s.relay(nil, rec, s.config())); n != 1 || rec.Messages()[0].UUID != ok.ID {
		s.t.Fatalf("Flush published %d events, want only the accepted one", n)
	}
}

// testStats: Stats counts pending, retrying and failed events and the age
// of the oldest pending one; the relay reports the Source's Stats.
func testStats(s *suite) {
	if st := s.stats(); st != (outbox.Stats{}) {
		s.t.Fatalf("Stats of an empty outbox: %+v", st)
	}
	s.write(event(cart, "x", 1), event(cart, "x", 2), event(cart, "y", 1), event(cart, "z", 1))
	st := s.stats()
	if st.Pending != 4 || st.Retrying != 0 || st.Failed != 0 || st.OldestPending <= 0 {
		s.t.Fatalf("Stats %+v, want 4 pending with an age", st)
	}

	rec := &Recorder{}
	rec.Refuse(func(_ string, m *message.Message) error {
		switch m.Metadata.Get(wire.HeaderAggregateID) {
		case "x":
			return errors.New("refused x")
		case "y":
			return errors.New("refused y")
		}
		return nil
	})
	cfg := s.config()
	cfg.Retry = retry.Policy{MaxAttempts: 2, BaseDelay: time.Nanosecond}
	r := s.relay(nil, rec, cfg)
	if n := s.flush(r); n != 1 {
		s.t.Fatalf("Flush published %d, want z's event", n)
	}
	if !s.statsAre(outbox.Stats{Pending: 3, Retrying: 2}) {
		s.t.Fatalf("Stats %+v, want x v1, x v2 and y v1 pending, x v1 and y v1 retrying", s.stats())
	}
	if n := s.flush(r); n != 0 {
		s.t.Fatalf("Flush published %d, want 0", n)
	}
	rs, err := r.Stats(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	rs.OldestPending = 0
	if want := (outbox.Stats{Pending: 1, Failed: 2}); rs != want {
		s.t.Fatalf("Relay.Stats %+v, want %+v (x v1 and y v1 failed, x v2 pending)", rs, want)
	}
}

// testFlush: Flush publishes every due event, batch after batch, and
// returns how many; it waits while another relay leads.
func testFlush(s *suite) {
	events := history(cart, 10, 5)
	s.write(events...)
	rec := &Recorder{}
	cfg := s.config()
	cfg.BatchSize = 7
	r := s.relay(nil, rec, cfg)
	if n := s.flush(r); n != 50 {
		s.t.Fatalf("Flush published %d, want 50", n)
	}
	if dups := s.requireOrder(rec.Messages(), 10, 5); dups != 0 {
		s.t.Errorf("%d duplicates", dups)
	}
	if n := s.flush(r); n != 0 {
		s.t.Fatalf("second Flush published %d, want 0", n)
	}

	// While a running relay leads, Flush waits for it.
	running := s.relay(s.replica(), &Recorder{}, s.config())
	stop := s.run(running)
	s.eventually(running.IsLeader, "the running relay leads")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if n, err := r.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) || n != 0 {
		s.t.Fatalf("Flush while another relay leads: %d, %v; want it to wait until its context ends", n, err)
	}
	stop()
	s.write(event(cart, "late", 1))
	if n := s.flush(r); n != 1 {
		s.t.Fatalf("Flush after the leader stopped published %d, want 1", n)
	}
}

// pipelinePublisher is a Recorder that checks the relay's pipelining:
// calls may overlap (the first waits until a second one starts, or a
// second passed), but no aggregate may be in two calls at once, nor have
// two events in one call. It refuses each event whose version is a
// multiple of 5 the first time it sees it.
type pipelinePublisher struct {
	Recorder
	mu         sync.Mutex
	inCall     map[string]bool
	calls      int
	maxCalls   int
	second     chan struct{}
	refused    map[string]bool
	violations []string
}

func (p *pipelinePublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	mine := make([]string, 0, len(msgs))
	for _, m := range msgs {
		agg := m.Metadata.Get(wire.HeaderAggregateType) + "/" + m.Metadata.Get(wire.HeaderAggregateID)
		if p.inCall[agg] {
			p.violations = append(p.violations, fmt.Sprintf("%s v%s in a call while another call or this one carries it",
				agg, m.Metadata.Get(wire.HeaderAggregateVersion)))
			continue
		}
		p.inCall[agg] = true
		mine = append(mine, agg)
	}
	p.calls++
	p.maxCalls = max(p.maxCalls, p.calls)
	first := p.second != nil && p.calls == 1
	if p.calls == 2 && p.second != nil {
		close(p.second)
		p.second = nil
	}
	second := p.second
	p.mu.Unlock()
	if first {
		select {
		case <-second:
		case <-time.After(time.Second):
		}
	}
	err := p.Recorder.Publish(topic, msgs...)
	p.mu.Lock()
	for _, agg := range mine {
		delete(p.inCall, agg)
	}
	p.calls--
	p.mu.Unlock()
	return err
}

// testPipeline: with a backlog, the relay publishes several batches at
// once (MaxInFlight), yet never has one aggregate in two calls at once
// nor two events of one aggregate in one call; events that fail once are
// retried, and every aggregate's events arrive in order: a0, written in
// one go, spans batches, the others are interleaved.
func testPipeline(s *suite) {
	pub := &pipelinePublisher{inCall: map[string]bool{}, second: make(chan struct{}), refused: map[string]bool{}}
	pub.Refuse(func(_ string, m *message.Message) error {
		// Called under the Recorder's lock.
		if v, _ := strconv.Atoi(m.Metadata.Get(wire.HeaderAggregateVersion)); v%5 == 0 && !pub.refused[m.UUID] {
			pub.refused[m.UUID] = true
			return fmt.Errorf("refused once: %s", m.UUID)
		}
		return nil
	})
	events := history(cart, 20, 15)
	var a0, rest []aggregate.Envelope
	for _, e := range events {
		if e.AggregateID == "a0" {
			a0 = append(a0, e)
		} else {
			rest = append(rest, e)
		}
	}
	s.write(a0...)
	s.writeConcurrently(rest, 3, 4)

	cfg := s.config()
	cfg.BatchSize = 10
	cfg.MaxInFlight = 4
	s.run(s.relay(nil, pub, cfg))
	s.eventually(func() bool { return s.statsAre(outbox.Stats{}) }, "everything published: %+v", s.stats())
	pub.mu.Lock()
	violations, maxCalls := pub.violations, pub.maxCalls
	pub.mu.Unlock()
	if len(violations) > 0 {
		s.t.Fatalf("%d violations, first: %s", len(violations), violations[0])
	}
	if maxCalls < 2 {
		s.t.Fatalf("at most %d publish call at a time: the relay did not pipeline", maxCalls)
	}
	s.requireOrder(pub.Messages(), 20, 15)
}

// testFetchBesideInFlightBothSides: beside an inFlight range in the
// middle of the pending events, Fetch returns the events before it and
// after it in one sequence order, and leaves out an aggregate with an
// event in the range also where its later event comes after the range.
// It may stop short of limit when it leaves events out, but never
// returns an event with an earlier pending one of its aggregate missing.
func testFetchBesideInFlightBothSides(s *suite) {
	s.write(event(cart, "a", 1), event(cart, "b", 1), event(cart, "c", 1), event(cart, "d", 1),
		event(cart, "e", 1), event(cart, "c", 2), event(cart, "f", 1))
	err := s.h.Source.Lead(context.Background(), func(ctx context.Context, _ <-chan struct{}) error {
		all, err := s.h.Source.Fetch(ctx, 10, outbox.SeqRange{})
		if err != nil {
			return err
		}
		if got, want := names(all), []string{"a/1", "b/1", "c/1", "d/1", "e/1", "c/2", "f/1"}; !slices.Equal(got, want) {
			return fmt.Errorf("fetch with nothing in flight: %v, want %v", got, want)
		}
		// c/1 and d/1 in flight: a/1 and b/1 come before them, e/1 (and
		// f/1, if the Source reads that far) after; c/2 waits for c/1.
		got, err := s.h.Source.Fetch(ctx, 4, outbox.SeqRange{From: all[2].Seq, To: all[3].Seq})
		if err != nil {
			return err
		}
		fetched := names(got)
		if len(fetched) < 3 || !slices.Equal(fetched[:3], []string{"a/1", "b/1", "e/1"}) || len(fetched) > 4 || len(fetched) == 4 && fetched[3] != "f/1" {
			return fmt.Errorf("fetch beside c/1 and d/1 in flight: %v, want [a/1 b/1 e/1] or [a/1 b/1 e/1 f/1]", fetched)
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// testFetchBesideRowsNotFetched: Fetch leaves out the aggregates of the
// pending events in its inFlight range also when it never returned
// them (an event committed after a fetch read past its sequence
// number, a retry held back since), and holds back an aggregate only:
// another type's aggregate with the same ID goes on.
func testFetchBesideRowsNotFetched(s *suite) {
	// One write: consecutive sequence numbers, a/1 first.
	s.write(event(cart, "a", 1), event(cart, "c", 1), event(cart, "b", 1), event(cart, "c", 2),
		event(order, "c", 1), event(cart, "d", 1))
	err := s.h.Source.Lead(context.Background(), func(ctx context.Context, _ <-chan struct{}) error {
		first, err := s.h.Source.Fetch(ctx, 1, outbox.SeqRange{})
		if err != nil {
			return err
		}
		if got := names(first); !slices.Equal(got, []string{"a/1"}) {
			return fmt.Errorf("first Fetch: %v, want [a/1]", got)
		}
		// In flight: a/1 and the two events after it, cart c/1 and b/1,
		// which no Fetch returned.
		got, err := s.h.Source.Fetch(ctx, 100, outbox.SeqRange{From: first[0].Seq, To: first[0].Seq + 2})
		if err != nil {
			return err
		}
		var typed []string
		for _, p := range got {
			typed = append(typed, p.Event.AggregateType+" "+p.Event.AggregateID+"/"+strconv.FormatInt(p.Event.Version, 10))
		}
		if want := []string{order + " c/1", cart + " d/1"}; !slices.Equal(typed, want) {
			return fmt.Errorf("fetch beside a range holding a/1, cart c/1 and b/1: %v, want %v", typed, want)
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
}

// testFetchLeavesOutInFlight: Fetch leaves out the events in its
// inFlight range and every later event of their aggregates, and returns
// the rest in sequence order.
func testFetchLeavesOutInFlight(s *suite) {
	s.write(history(cart, 3, 3)...)
	s.write(event(cart, "b", 1), event(cart, "b", 2))
	err := s.h.Source.Lead(context.Background(), func(ctx context.Context, _ <-chan struct{}) error {
		first, err := s.h.Source.Fetch(ctx, 2, outbox.SeqRange{})
		if err != nil {
			return err
		}
		if got := names(first); !slices.Equal(got, []string{"a0/1", "a1/1"}) {
			return fmt.Errorf("first Fetch: %v, want [a0/1 a1/1]", got)
		}
		inFlight := outbox.SeqRange{From: first[0].Seq, To: first[1].Seq}
		next, err := s.h.Source.Fetch(ctx, 100, inFlight)
		if err != nil {
			return err
		}
		if got, want := names(next), []string{"a2/1", "a2/2", "a2/3", "b/1", "b/2"}; !slices.Equal(got, want) {
			return fmt.Errorf("fetch beside a0/1 and a1/1 in flight: %v, want %v", got, want)
		}
		if err := s.h.Source.MarkPublished(ctx, []int64{first[0].Seq, first[1].Seq}); err != nil {
			return err
		}
		after, err := s.h.Source.Fetch(ctx, 4, outbox.SeqRange{From: next[3].Seq, To: next[4].Seq})
		if err != nil {
			return err
		}
		if got, want := names(after), []string{"a2/1", "a0/2", "a1/2", "a2/2"}; !slices.Equal(got, want) {
			return fmt.Errorf("fetch once a0/1 and a1/1 are published, beside b in flight: %v, want %v", got, want)
		}
		// Every pending event in the range is left out, in flight or not.
		hull, err := s.h.Source.Fetch(ctx, 100, outbox.SeqRange{From: after[0].Seq, To: after[2].Seq})
		if err != nil {
			return err
		}
		if got, want := names(hull), []string{"b/1", "b/2"}; !slices.Equal(got, want) {
			return fmt.Errorf("fetch beside a range holding a2/1, a0/2 and a1/2: %v, want %v", got, want)
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
}
