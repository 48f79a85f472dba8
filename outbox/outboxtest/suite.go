package outboxtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/uuidv7"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/retry"
)

// The suite's events. Carts and orders are two aggregate types, so two
// topics; itemRemoved is at schema version 2.
type (
	itemAdded struct {
		SKU string `json:"sku"`
		N   int    `json:"n"`
	}
	itemRemoved struct {
		SKU      string `json:"sku"`
		Quantity int    `json:"quantity"`
	}
	orderPlaced struct {
		Order string `json:"order"`
		N     int    `json:"n"`
	}
	notRegistered struct{ X int }
)

func (itemAdded) EventName() string     { return "outboxtest.item_added" }
func (itemRemoved) EventName() string   { return "outboxtest.item_removed" }
func (itemRemoved) EventVersion() int   { return 2 }
func (orderPlaced) EventName() string   { return "outboxtest.order_placed" }
func (notRegistered) EventName() string { return "outboxtest.not_registered" }

const (
	cart  = "cart"
	order = "order"
)

func register(t *testing.T, reg *eventbus.Registry) {
	t.Helper()
	for _, err := range []error{
		eventbus.Register[itemAdded](reg, eventbus.AggregateType(cart)),
		eventbus.Register[itemRemoved](reg, eventbus.AggregateType(cart)),
		eventbus.Register[orderPlaced](reg, eventbus.AggregateType(order)),
	} {
		if err != nil {
			t.Fatalf("outboxtest: register the suite's events: %v", err)
		}
	}
	if reg.Topic(cart) == reg.Topic(order) {
		t.Fatalf("outboxtest: the registry's topic rule gives carts and orders one topic, %q", reg.Topic(cart))
	}
}

// event returns version v of aggregate typ/id.
func event(typ, id string, v int64) aggregate.Envelope {
	var payload aggregate.Event = itemAdded{SKU: id, N: int(v)}
	if typ == order {
		payload = orderPlaced{Order: id, N: int(v)}
	}
	return aggregate.Envelope{
		ID:            uuidv7.New().String(),
		Name:          payload.EventName(),
		AggregateType: typ,
		AggregateID:   id,
		Version:       v,
		OccurredAt:    time.Now(),
		Payload:       payload,
	}
}

// history returns aggregates × versions events of carts "a0", "a1", …,
// interleaved as concurrent writers produce them: version 1 of every
// aggregate, then version 2, …
func history(typ string, aggregates, versions int) []aggregate.Envelope {
	out := make([]aggregate.Envelope, 0, aggregates*versions)
	for v := 1; v <= versions; v++ {
		for a := range aggregates {
			out = append(out, event(typ, "a"+strconv.Itoa(a), int64(v)))
		}
	}
	return out
}

// names returns "aggregate ID/version" of each fetched event, in order.
func names(ps []outbox.Pending) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Event.AggregateID + "/" + strconv.FormatInt(p.Event.Version, 10)
	}
	return out
}

// suite is one subtest's state.
type suite struct {
	t   *testing.T
	h   *Harness
	log *slog.Logger
}

// config returns a relay configuration with quick polls and retries.
func (s *suite) config() *outbox.RelayConfig {
	return &outbox.RelayConfig{
		PollInterval: 50 * time.Millisecond,
		Retry:        retry.Policy{BaseDelay: 20 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
		Logger:       s.log,
	}
}

// relay returns a relay from src (nil: the Harness's Source) to pub.
func (s *suite) relay(src outbox.Source, pub message.Publisher, cfg *outbox.RelayConfig) *outbox.Relay {
	s.t.Helper()
	if src == nil {
		src = s.h.Source
	}
	r, err := outbox.NewRelay(src, pub, s.h.Registry, cfg)
	if err != nil {
		s.t.Fatalf("NewRelay: %v", err)
	}
	return r
}

// replica returns a Source for one more relay.
func (s *suite) replica() outbox.Source {
	if s.h.Replica == nil {
		return s.h.Source
	}
	src := s.h.Replica(s.t)
	if src == nil {
		s.t.Fatal("outboxtest: Harness.Replica returned nil")
	}
	return src
}

// run starts r.Run in the background; see [Start].
func (s *suite) run(r *outbox.Relay) (stop func()) {
	s.t.Helper()
	return Start(s.t, r, s.h.Timeout)
}

// Start runs r.Run in the background until the returned stop is called
// or the test ends; stop cancels Run's context and fails the test unless
// Run returns nil within timeout.
func Start(t testing.TB, r *outbox.Relay, timeout time.Duration) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Relay.Run returned %v, want nil", err)
				}
			case <-time.After(timeout):
				t.Errorf("Relay.Run did not return within %s of its context's end", timeout)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// write commits events in one write.
func (s *suite) write(events ...aggregate.Envelope) {
	s.t.Helper()
	if err := s.h.Write(context.Background(), events...); err != nil {
		s.t.Fatalf("write %d events: %v", len(events), err)
	}
}

// writeConcurrently writes events with several writers, each owning a
// share of the aggregates ("a<n>": n modulo writers) and writing its
// events in order, chunk events per write. It returns when all are
// written.
func (s *suite) writeConcurrently(events []aggregate.Envelope, writers, chunk int) {
	s.t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		var mine []aggregate.Envelope
		for _, e := range events {
			if n, _ := strconv.Atoi(e.AggregateID[1:]); n%writers == w {
				mine = append(mine, e)
			}
		}
		wg.Go(func() {
			for c := range slices.Chunk(mine, chunk) {
				if err := s.h.Write(context.Background(), c...); err != nil {
					s.t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if s.t.Failed() {
		s.t.FailNow()
	}
}

// eventually waits until cond holds, failing the test after the
// Harness's Timeout.
func (s *suite) eventually(cond func() bool, msg string, args ...any) {
	s.t.Helper()
	deadline := time.Now().Add(s.h.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("gave up after %s: %s", s.h.Timeout, fmt.Sprintf(msg, args...))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (s *suite) stats() outbox.Stats {
	s.t.Helper()
	st, err := s.h.Source.Stats(context.Background())
	if err != nil {
		s.t.Fatalf("Stats: %v", err)
	}
	return st
}

// statsAre reports whether the Source's Stats are want, ignoring
// OldestPending.
func (s *suite) statsAre(want outbox.Stats) bool {
	st := s.stats()
	st.OldestPending = 0
	return st == want
}

func (s *suite) flush(r *outbox.Relay) int {
	s.t.Helper()
	n, err := r.Flush(context.Background())
	if err != nil {
		s.t.Fatalf("Flush: %v", err)
	}
	return n
}

// requireOrder fails unless msgs hold every version of aggregates
// aggregates up to versions, in order per aggregate; it returns the
// number of duplicates.
func (s *suite) requireOrder(msgs []Message, aggregates int, versions int64) int {
	s.t.Helper()
	check := NewOrderCheck()
	for _, m := range msgs {
		if err := check.AddMessage(m.Message); err != nil {
			s.t.Fatalf("message %s: %v", m.UUID, err)
		}
	}
	if err := check.Complete(aggregates, versions); err != nil {
		s.t.Fatal(err)
	}
	return check.Duplicates()
}

// refuseAggregate refuses every message of aggregate typ/id.
func refuseAggregate(typ, id string) func(string, *message.Message) error {
	return func(_ string, m *message.Message) error {
		if m.Metadata.Get(wire.HeaderAggregateType) == typ && m.Metadata.Get(wire.HeaderAggregateID) == id {
			return fmt.Errorf("poison: %s %s", typ, id)
		}
		return nil
	}
}

// errDown is what a publisher in an outage returns.
var errDown = errors.New("outboxtest: broker down")
