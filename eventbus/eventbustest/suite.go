// Package eventbustest holds the test suites of the eventbus ports, which
// every adapter must pass.
//
// [Run] is the suite of an [eventbus.Transport]: typed delivery with the
// envelope, independent handlers, retries, outages, dead letters, panics,
// undecodable messages, upcasting, order per aggregate, several event
// types per consumer, unknown events and sagas; each with handlers
// registered with [eventbus.Handle] and again with [eventbus.HandleOnce]
// (and an [eventbus.MemoryInbox]), which a [eventbus.BatchTransport]
// consumes in batches. dddkit runs it against the
// in-memory transport and against a real Kafka broker; a third-party
// transport runs it from its own tests:
//
//	func TestSuite(t *testing.T) {
//		eventbustest.Run(t, func(t *testing.T) eventbustest.Harness {
//			return eventbustest.Harness{Transport: myTransport(t), Topic: myTopic}
//		})
//	}
//
// [RunInbox] is the suite of an [eventbus.Inbox]: effects once under
// duplicate and concurrent delivery, a failing handler rolling back, and
// batches. dddkit runs it against [eventbus.MemoryInbox] and the
// PostgreSQL inbox.
//
// [RunDeadLetters] is the suite of an [eventbus.DeadLetters] store, and
// [RunParking] the suite of dead letters that keep order through a
// router: a key parked behind its dead letter while other keys go on,
// replayed or skipped in order. dddkit runs them against the in-memory
// adapters and against PostgreSQL and Kafka.
package eventbustest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/retry"
)

// Harness is what the suite needs from the transport under test.
type Harness struct {
	// Transport is the transport under test. The suite does not close
	// it; register its Close with t.Cleanup.
	Transport eventbus.Transport

	// Topic returns a new topic of the test's own, ready to publish to
	// and to subscribe (create it on the broker if the broker needs
	// that). Called a few times per subtest.
	Topic func(t testing.TB) string

	// Timeout bounds each wait for a delivery. 0 means 30s.
	Timeout time.Duration
}

// Run runs the suite as parallel subtests of t, under "Handle/" with
// handlers registered with [eventbus.Handle] and under "HandleOnce/"
// with [eventbus.HandleOnce]. newHarness is called once per subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"DeliversTypedEventWithMetadata", testDelivers},
		{"HandlersAreIndependent", testIndependent},
		{"RetriesThenSucceeds", testRetries},
		{"UnavailableRetriedBeyondMaxAttempts", testUnavailable},
		{"PoisonGoesToDeadLetterAndStreamGoesOn", testPoison},
		{"PanicIsRecovered", testPanic},
		{"UndecodableGoesToDeadLetterWithoutRetry", testUndecodable},
		{"UpcastsOldPayload", testUpcast},
		{"KeepsOrderPerAggregate", testOrder},
		{"OneHandlerNameSeveralEventTypes", testSeveralTypes},
		{"UnknownEventsSkipped", testUnknownSkip},
		{"UnknownEventsDeadLettered", testUnknownDeadLetter},
	}
	for _, once := range []bool{false, true} {
		round := "Handle/"
		if once {
			round = "HandleOnce/"
		}
		for _, tc := range tests {
			t.Run(round+tc.name, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t)
				if h.Transport == nil || h.Topic == nil {
					t.Fatal("eventbustest: Harness needs Transport and Topic")
				}
				if h.Timeout == 0 {
					h.Timeout = 30 * time.Second
				}
				tc.fn(t, &suite{h: h, once: once})
			})
		}
	}
}

// Test events. Version 2 of "test.registered" renamed Name to FullName
// and added Source; upcasters bridge the gap.
type (
	created struct {
		Seq  int
		Note string
	}
	renamed    struct{ To string }
	notKnown   struct{ X int }
	registered struct {
		FullName string
		Source   string
	}
	registeredV1 struct{ Name string }
)

func (created) EventName() string      { return "test.created" }
func (renamed) EventName() string      { return "test.renamed" }
func (notKnown) EventName() string     { return "test.not_known" }
func (registered) EventName() string   { return "test.registered" }
func (registered) EventVersion() int   { return 2 }
func (registeredV1) EventName() string { return "test.registered" }

const aggType = "thing"

type suite struct {
	h    Harness
	once bool // register with HandleOnce
}

// env is one subtest's set-up: a topic, a registry that maps every
// aggregate type to it, a dead-letter topic and a publisher.
type env struct {
	t          *testing.T
	s          *suite
	topic      string
	deadLetter string
	reg        *eventbus.Registry
	pub        *eventbus.Publisher
	logger     *slog.Logger
	inbox      *eventbus.MemoryInbox
	seq        atomic.Int64
}

// handle registers fn as handler name of r: with eventbus.Handle, or in
// the HandleOnce round with eventbus.HandleOnce and the subtest's memory
// inbox.
func handle[E aggregate.Event](e *env, r *eventbus.Router, name string, fn eventbus.HandlerFunc[E]) error {
	if e.s.once {
		return eventbus.HandleOnce(r, name, e.inbox, fn)
	}
	return eventbus.Handle(r, name, fn)
}

func (s *suite) setup(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, s: s, topic: s.h.Topic(t), deadLetter: s.h.Topic(t), logger: testLogger(), inbox: eventbus.NewMemoryInbox()}
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:eventbustest", Topic: func(string) string { return e.topic }})
	must(t, eventbus.Register[created](reg, eventbus.AggregateType(aggType)))
	must(t, eventbus.Register[renamed](reg, eventbus.AggregateType(aggType)))
	must(t, eventbus.Register[registered](reg, eventbus.AggregateType(aggType),
		eventbus.Upcaster(1, func(p json.RawMessage) (json.RawMessage, error) {
			var v1 struct{ Name string }
			if err := json.Unmarshal(p, &v1); err != nil {
				return nil, err
			}
			return json.Marshal(map[string]string{"FullName": v1.Name, "Source": "upcast-from-v1"})
		})))
	e.reg = reg
	var err error
	e.pub, err = eventbus.NewPublisher(s.h.Transport.Publisher(), reg)
	must(t, err)
	return e
}

func testLogger() *slog.Logger {
	if os.Getenv("EVENTBUSTEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// router returns a router with quick retries; cfg may adjust it.
func (e *env) router(adjust func(c *eventbus.RouterConfig)) *eventbus.Router {
	e.t.Helper()
	cfg := &eventbus.RouterConfig{
		Logger:          e.logger,
		DeadLetterTopic: e.deadLetter,
		Retry:           retry.Policy{MaxAttempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
		CloseTimeout:    10 * time.Second,
	}
	if adjust != nil {
		adjust(cfg)
	}
	r, err := eventbus.NewRouter(e.s.h.Transport, e.reg, cfg)
	must(e.t, err)
	return r
}

// run starts r and waits until it has subscribed; it stops with the test.
func (e *env) run(r *eventbus.Router) {
	e.t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	e.t.Cleanup(func() {
		if err := r.Close(); err != nil {
			e.t.Errorf("close router: %v", err)
		}
		if err := <-done; err != nil {
			e.t.Errorf("router run: %v", err)
		}
	})
	select {
	case <-r.Running():
	case err := <-done:
		e.t.Fatalf("router stopped before running: %v", err)
	case <-time.After(e.s.h.Timeout):
		e.t.Fatal("router did not start")
	}
}

// name returns a handler name unique to this subtest (a Kafka consumer
// group).
func (e *env) name(base string) string { return base + "-" + e.topic }

// envelope returns a new event of aggregate id.
func (e *env) envelope(id string, p aggregate.Event) aggregate.Envelope {
	n := e.seq.Add(1)
	return aggregate.Envelope{
		ID:            fmt.Sprintf("%s-ev-%d", e.topic, n),
		Name:          p.EventName(),
		AggregateType: aggType,
		AggregateID:   id,
		Version:       n,
		OccurredAt:    time.Date(2026, 1, 2, 3, 4, 5, int(n), time.UTC),
		Payload:       p,
	}
}

// unknownMessage encodes ev as a producer that knows its event type does,
// for consumers whose registry does not.
func (e *env) unknownMessage(ev aggregate.Envelope) *message.Message {
	e.t.Helper()
	other := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:eventbustest"})
	must(e.t, eventbus.Register[notKnown](other))
	msg, err := other.Encode(ev)
	must(e.t, err)
	return msg
}

func (e *env) publish(envs ...aggregate.Envelope) {
	e.t.Helper()
	must(e.t, e.pub.Publish(context.Background(), envs...))
}

// collector keeps what a subscription delivers.
type collector struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (c *collector) all() []*message.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*message.Message(nil), c.msgs...)
}

// deadLetters subscribes to the dead-letter topic (before anything is
// published, so that non-persistent transports deliver too).
func (e *env) deadLetters() *collector {
	e.t.Helper()
	sub, err := e.s.h.Transport.Subscriber(e.name("dlq-reader"))
	must(e.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, e.deadLetter)
	if err != nil {
		cancel()
		e.t.Fatalf("subscribe to dead letters: %v", err)
	}
	c := &collector{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for msg := range ch {
			c.mu.Lock()
			c.msgs = append(c.msgs, msg)
			c.mu.Unlock()
			msg.Ack()
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		_ = sub.Close()
		<-done
	})
	return c
}

func (e *env) eventually(cond func() bool, format string, args ...any) {
	e.t.Helper()
	deadline := time.Now().Add(e.s.h.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("gave up after %s: "+format, append([]any{e.s.h.Timeout}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func check(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
}

// record is a concurrency-safe list of what handlers saw.
type record[T any] struct {
	mu    sync.Mutex
	items []T
}

func (r *record[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, v)
}

func (r *record[T]) get() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

func (r *record[T]) len() int { return len(r.get()) }

type seen struct {
	event created
	env   aggregate.Envelope
	ctxMD aggregate.Metadata
}

func testDelivers(t *testing.T, s *suite) {
	e := s.setup(t)
	var got record[seen]
	r := e.router(nil)
	must(t, handle(e, r, e.name("deliver"), func(ctx context.Context, ev created, env aggregate.Envelope) error {
		got.add(seen{ev, env, aggregate.MetadataFromContext(ctx)})
		return nil
	}))
	e.run(r)

	sent := e.envelope("agg-1", created{Seq: 7, Note: "hello, wörld"})
	sent.Metadata = aggregate.Metadata{
		CorrelationID: "corr-1", CausationID: "cmd-9",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Values:      map[string]string{"tenant": "t1", "user": "ada"},
	}
	e.publish(sent)
	e.eventually(func() bool { return got.len() == 1 }, "event not delivered")

	g := got.get()[0]
	check(t, g.event == created{Seq: 7, Note: "hello, wörld"}, "payload = %+v", g.event)
	env := g.env
	check(t, env.Payload == g.event, "envelope payload = %+v, want the event", env.Payload)
	check(t, env.ID == sent.ID && env.Name == "test.created", "event id/name = %q %q", env.ID, env.Name)
	check(t, env.AggregateType == aggType && env.AggregateID == "agg-1" && env.Version == sent.Version,
		"aggregate = %q %q %d", env.AggregateType, env.AggregateID, env.Version)
	check(t, env.OccurredAt.Equal(sent.OccurredAt), "occurred at %s, want %s", env.OccurredAt, sent.OccurredAt)
	md := env.Metadata
	check(t, md.CorrelationID == "corr-1" && md.CausationID == "cmd-9" && md.TraceParent == sent.Metadata.TraceParent,
		"metadata = %+v", md)
	check(t, len(md.Values) == 2 && md.Values["tenant"] == "t1" && md.Values["user"] == "ada", "values = %v", md.Values)
	// What the handler causes: same correlation, caused by this event.
	check(t, g.ctxMD.CorrelationID == "corr-1" && g.ctxMD.CausationID == sent.ID && g.ctxMD.TraceParent == sent.Metadata.TraceParent,
		"context metadata = %+v", g.ctxMD)
	check(t, g.ctxMD.Values["tenant"] == "t1", "context values = %v", g.ctxMD.Values)
}

func testIndependent(t *testing.T, s *suite) {
	e := s.setup(t)
	dl := e.deadLetters()
	var failing, counting atomic.Int64
	r := e.router(nil)
	must(t, handle(e, r, e.name("failing"), func(context.Context, created, aggregate.Envelope) error {
		failing.Add(1)
		return eventbus.Permanent(errors.New("always refuses"))
	}))
	must(t, handle(e, r, e.name("counting"), func(context.Context, created, aggregate.Envelope) error {
		counting.Add(1)
		return nil
	}))
	e.run(r)
	for i := range 3 { // one key each: a dead letter parks the later events of its key
		e.publish(e.envelope(fmt.Sprintf("agg-%d", i), created{Seq: i}))
	}
	e.eventually(func() bool { return len(dl.all()) == 3 && counting.Load() == 3 },
		"dead letters %d, counted %d", len(dl.all()), counting.Load())
	// A permanent error is not retried, and the failures never re-ran the
	// other handler.
	time.Sleep(100 * time.Millisecond)
	check(t, failing.Load() == 3, "failing handler ran %d times, want 3", failing.Load())
	check(t, counting.Load() == 3, "counting handler ran %d times, want 3", counting.Load())
	for _, m := range dl.all() {
		check(t, m.Metadata.Get(eventbus.HeaderDeadLetterHandler) == e.name("failing"), "dead letter from handler %q", m.Metadata.Get(eventbus.HeaderDeadLetterHandler))
	}
}

func testRetries(t *testing.T, s *suite) {
	e := s.setup(t)
	dl := e.deadLetters()
	var attempts atomic.Int64
	var done atomic.Bool
	r := e.router(func(c *eventbus.RouterConfig) { c.Retry.MaxAttempts = 5 })
	must(t, handle(e, r, e.name("flaky"), func(context.Context, created, aggregate.Envelope) error {
		if attempts.Add(1) < 3 {
			return errors.New("temporarily unavailable")
		}
		done.Store(true)
		return nil
	}))
	e.run(r)
	e.publish(e.envelope("agg-1", created{Seq: 1}))
	e.eventually(done.Load, "handler never succeeded (%d attempts)", attempts.Load())
	time.Sleep(100 * time.Millisecond)
	check(t, attempts.Load() == 3, "attempts = %d, want 3", attempts.Load())
	check(t, len(dl.all()) == 0, "%d dead letters, want none", len(dl.all()))
}

func testUnavailable(t *testing.T, s *suite) {
	e := s.setup(t)
	dl := e.deadLetters()
	var attempts atomic.Int64
	var done atomic.Bool
	r := e.router(func(c *eventbus.RouterConfig) {
		c.Retry = retry.Policy{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
	})
	must(t, handle(e, r, e.name("outage"), func(context.Context, created, aggregate.Envelope) error {
		if attempts.Add(1) <= 6 {
			return fmt.Errorf("database down: %w", eventbus.ErrUnavailable)
		}
		done.Store(true)
		return nil
	}))
	e.run(r)
	e.publish(e.envelope("agg-1", created{Seq: 1}))
	e.eventually(done.Load, "handler never succeeded (%d attempts)", attempts.Load())
	time.Sleep(50 * time.Millisecond)
	check(t, attempts.Load() == 7, "attempts = %d, want 7 (an outage does not count against MaxAttempts)", attempts.Load())
	check(t, len(dl.all()) == 0, "%d dead letters, want none", len(dl.all()))
}

func testPoison(t *testing.T, s *suite) {
	e := s.setup(t)
	dl := e.deadLetters()
	var poisonAttempts atomic.Int64
	var handled record[int]
	r := e.router(nil) // 3 attempts
	name := e.name("poison")
	must(t, handle(e, r, name, func(_ context.Context, ev created, _ aggregate.Envelope) error {
		if ev.Note == "poison" {
			poisonAttempts.Add(1)
			return fmt.Errorf("cannot handle seq %d", ev.Seq)
		}
		handled.add(ev.Seq)
		return nil
	}))
	e.run(r)
	poison := e.envelope("agg-1", created{Seq: 1, Note: "poison"})
	e.publish(poison, e.envelope("agg-1", created{Seq: 2}), e.envelope("agg-2", created{Seq: 3}), e.envelope("agg-2", created{Seq: 4}))

	e.eventually(func() bool { return handled.len() == 2 && len(dl.all()) == 1 },
		"handled %v, %d dead letters", handled.get(), len(dl.all()))
	time.Sleep(100 * time.Millisecond) // give seq 2 time to be handled, which it must not be
	check(t, poisonAttempts.Load() == 3, "poison attempts = %d, want 3 (MaxAttempts)", poisonAttempts.Load())
	check(t, fmt.Sprint(handled.get()) == "[3 4]", "handled %v, want [3 4]: agg-1's seq 2 waits behind its dead letter, agg-2 goes on", handled.get())
	m := dl.all()[0]
	check(t, m.Metadata.Get(eventbus.HeaderEventID) == poison.ID, "dead letter is %q, want %q", m.Metadata.Get(eventbus.HeaderEventID), poison.ID)
	check(t, m.Metadata.Get(eventbus.HeaderDeadLetterTopic) == e.topic, "original topic header %q, want %q", m.Metadata.Get(eventbus.HeaderDeadLetterTopic), e.topic)
	check(t, m.Metadata.Get(eventbus.HeaderDeadLetterHandler) == name, "handler header %q", m.Metadata.Get(eventbus.HeaderDeadLetterHandler))
	reason := m.Metadata.Get(eventbus.HeaderDeadLetterReason)
	check(t, strings.Contains(reason, "cannot handle seq 1") && strings.Contains(reason, "3 attempts"), "reason %q", reason)
	var payload created
	must(t, json.Unmarshal(m.Payload, &payload))
	check(t, payload.Note == "poison", "dead letter payload %+v", payload)
}

func testPanic(t *testing.T, s *suite) {
	e := s.setup(t)
	dl := e.deadLetters()
	var handled atomic.Int64
	r := e.router(func(c *eventbus.RouterConfig) { c.Retry.MaxAttempts = 2 })
	must(t, handle(e, r, e.name("panicky"), func(_ context.Context, ev created, _ aggregate.Envelope) error {
		if ev.Note == "panic" {
			panic("boom")
		}
		handled.Add(1)
		return nil
	}))
	e.run(r)
	e.publish(e.envelope("agg-1", created{Note: "panic"}), e.envelope("agg-2", created{}))
	e.eventually(func() bool { return handled.Load() == 1 && len(dl.all()) == 1 }, "handled %d, dead letters %d", handled.Load(), len(dl.all()))
	reason := dl.all()[0].Metadata.Get(eventbus.HeaderDeadLetterReason)
	check(t, strings.Contains(reason, "panicked: boom"), "reason %q", reason)
}

func testUndecodable(t *testing.T, s *suite) {
	e := s.setup(t)
	dl := e.deadLetters()
	var calls atomic.Int64
	r := e.router(nil)
	must(t, handle(e, r, e.name("strict"), func(context.Context, created, aggregate.Envelope) error {
		calls.Add(1)
		return nil
	}))
	e.run(r)
	good, err := e.reg.Encode(e.envelope("agg-1", created{Seq: 1}))
	must(t, err)
	bad := good.Copy()
	bad.UUID = "bad-json"
	bad.Metadata.Set(eventbus.HeaderEventID, "bad-json")
	bad.Metadata.Set(eventbus.HeaderAggregateID, "agg-bad") // its own key: the good one is not parked behind it
	bad.Payload = []byte(`{"Seq": "not a number"`)
	must(t, e.s.h.Transport.Publisher().Publish(e.topic, bad, good))
	e.eventually(func() bool { return calls.Load() == 1 && len(dl.all()) == 1 }, "calls %d, dead letters %d", calls.Load(), len(dl.all()))
	m := dl.all()[0]
	check(t, m.UUID == "bad-json" || m.Metadata.Get(eventbus.HeaderEventID) == "bad-json", "dead letter %q", m.UUID)
	reason := m.Metadata.Get(eventbus.HeaderDeadLetterReason)
	check(t, strings.Contains(reason, "cannot decode") && !strings.Contains(reason, "attempts"), "reason %q (decode errors are not retried)", reason)
}

func testUpcast(t *testing.T, s *suite) {
	e := s.setup(t)
	var got record[registered]
	r := e.router(nil)
	must(t, handle(e, r, e.name("upcast"), func(_ context.Context, ev registered, _ aggregate.Envelope) error {
		got.add(ev)
		return nil
	}))
	e.run(r)

	// An old producer that only knows version 1 of the event.
	oldReg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:eventbustest", Topic: func(string) string { return e.topic }})
	must(t, eventbus.Register[registeredV1](oldReg, eventbus.AggregateType(aggType)))
	oldPub, err := eventbus.NewPublisher(e.s.h.Transport.Publisher(), oldReg)
	must(t, err)
	must(t, oldPub.Publish(context.Background(), e.envelope("agg-1", registeredV1{Name: "Ada Lovelace"})))
	// And today's producer.
	e.publish(e.envelope("agg-1", registered{FullName: "Grace Hopper", Source: "v2"}))

	e.eventually(func() bool { return got.len() == 2 }, "got %v", got.get())
	check(t, fmt.Sprint(got.get()) == "[{Ada Lovelace upcast-from-v1} {Grace Hopper v2}]", "got %v", got.get())
}

func testOrder(t *testing.T, s *suite) {
	e := s.setup(t)
	const n = 60
	var got record[string]
	r := e.router(nil)
	must(t, handle(e, r, e.name("order"), func(_ context.Context, ev created, env aggregate.Envelope) error {
		got.add(fmt.Sprintf("%s/%d", env.AggregateID, ev.Seq))
		return nil
	}))
	e.run(r)
	var envs []aggregate.Envelope
	for i := range n {
		envs = append(envs, e.envelope(fmt.Sprintf("agg-%d", i%3), created{Seq: i}))
	}
	e.publish(envs...)
	e.eventually(func() bool { return got.len() >= n }, "got %d of %d", got.len(), n)
	last := map[string]int{}
	for _, s := range got.get() {
		var id string
		var seq int
		if _, err := fmt.Sscanf(strings.Replace(s, "/", " ", 1), "%s %d", &id, &seq); err != nil {
			t.Fatal(err)
		}
		if prev, ok := last[id]; ok && seq <= prev {
			t.Errorf("%s: seq %d after %d", id, seq, prev)
		}
		last[id] = seq
	}
	check(t, got.len() == n, "got %d events, want %d", got.len(), n)
}

func testSeveralTypes(t *testing.T, s *suite) {
	e := s.setup(t)
	var got record[string]
	r := e.router(nil)
	name := e.name("projection")
	must(t, handle(e, r, name, func(_ context.Context, ev created, _ aggregate.Envelope) error {
		got.add(fmt.Sprint("created ", ev.Seq))
		return nil
	}))
	must(t, handle(e, r, name, func(_ context.Context, ev renamed, _ aggregate.Envelope) error {
		got.add("renamed " + ev.To)
		return nil
	}))
	err := handle(e, r, name, func(context.Context, created, aggregate.Envelope) error { return nil })
	check(t, errors.Is(err, eventbus.ErrDuplicateHandler), "second handler for the same type: %v", err)
	e.run(r)
	e.publish(e.envelope("a", created{Seq: 1}), e.envelope("a", renamed{To: "x"}), e.envelope("a", created{Seq: 2}), e.envelope("a", renamed{To: "y"}))
	e.eventually(func() bool { return got.len() == 4 }, "got %v", got.get())
	check(t, fmt.Sprint(got.get()) == "[created 1 renamed x created 2 renamed y]", "got %v", got.get())
}

func testUnknownSkip(t *testing.T, s *suite) {
	e := s.setup(t)
	dl := e.deadLetters()
	var got record[int]
	r := e.router(nil) // SkipUnknown by default
	must(t, handle(e, r, e.name("skip"), func(_ context.Context, ev created, _ aggregate.Envelope) error {
		got.add(ev.Seq)
		return nil
	}))
	e.run(r)
	unknown := e.unknownMessage(e.envelope("a", notKnown{X: 1}))
	known, err := e.reg.Encode(e.envelope("a", created{Seq: 2}))
	must(t, err)
	renamedMsg, err := e.reg.Encode(e.envelope("a", renamed{To: "registered but not handled here"}))
	must(t, err)
	must(t, e.s.h.Transport.Publisher().Publish(e.topic, unknown, renamedMsg, known))
	e.eventually(func() bool { return got.len() == 1 }, "known event not handled")
	time.Sleep(100 * time.Millisecond)
	check(t, len(dl.all()) == 0, "%d dead letters, want none", len(dl.all()))
}

func testUnknownDeadLetter(t *testing.T, s *suite) {
	e := s.setup(t)
	dl := e.deadLetters()
	var got record[int]
	r := e.router(func(c *eventbus.RouterConfig) { c.UnknownEvents = eventbus.DeadLetterUnknown })
	must(t, handle(e, r, e.name("strict-unknown"), func(_ context.Context, ev created, _ aggregate.Envelope) error {
		got.add(ev.Seq)
		return nil
	}))
	e.run(r)
	unknown := e.unknownMessage(e.envelope("a", notKnown{X: 1}))
	known, err := e.reg.Encode(e.envelope("b", created{Seq: 2})) // another key: not parked behind the dead letter
	must(t, err)
	must(t, e.s.h.Transport.Publisher().Publish(e.topic, unknown, known))
	e.eventually(func() bool { return got.len() == 1 && len(dl.all()) == 1 }, "handled %d, dead letters %d", got.len(), len(dl.all()))
	m := dl.all()[0]
	check(t, m.Metadata.Get(eventbus.HeaderEventName) == "test.not_known", "dead letter %q", m.Metadata.Get(eventbus.HeaderEventName))
	check(t, strings.Contains(m.Metadata.Get(eventbus.HeaderDeadLetterReason), "unknown event"), "reason %q", m.Metadata.Get(eventbus.HeaderDeadLetterReason))
}
