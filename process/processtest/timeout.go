package processtest

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/deadline"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/uuidv7"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/process"
)

// The aggregate types of the scenario's events: orders and payments,
// two topics.
const (
	OrderType   = "processtest_order"
	PaymentType = "processtest_payment"
)

// The scenario's events and command.
type (
	// OrderPlaced starts a payment process that times out after Timeout.
	OrderPlaced struct {
		Order   string
		Timeout time.Duration
	}
	// PaymentReceived ends the process of its order.
	PaymentReceived struct{ Order string }
	// PaymentTimedOut is the process's deadline.
	PaymentTimedOut struct{ Order string }
	// CancelOrder is the command the timeout dispatches.
	CancelOrder struct{ Order string }
)

// EventName implements aggregate.Event.
func (OrderPlaced) EventName() string { return "processtest.order_placed" }

// EventName implements aggregate.Event.
func (PaymentReceived) EventName() string { return "processtest.payment_received" }

// EventName implements aggregate.Event.
func (PaymentTimedOut) EventName() string { return "processtest.payment_timed_out" }

// Payment is the state of the scenario's process.
type Payment struct {
	Placed    int  // OrderPlaced applied
	Paid      int  // PaymentReceived applied
	Cancelled bool // the timeout was cancelled by the payment
	TimedOut  int  // PaymentTimedOut applied
}

// Harness is what [RunTimeout] runs on.
type Harness struct {
	// Registry is an empty registry. Its topic rule must give OrderType
	// and PaymentType two topics, which exist.
	Registry *eventbus.Registry
	// Transport carries the events to the router.
	Transport eventbus.Transport
	// RouterConfig configures the router (nil: defaults).
	RouterConfig *eventbus.RouterConfig
	// Store keeps the process's instances.
	Store process.Store
	// Outbox is where events are written and deadlines scheduled, in
	// the Store's transaction.
	Outbox interface {
		outbox.Source
		deadline.Scheduler
	}
	// Write commits events to Outbox.
	Write func(ctx context.Context, events ...aggregate.Envelope) error
	// Publisher is the publisher of Transport, which the relay uses and
	// the scenario redelivers events through.
	Publisher message.Publisher
	// Timeout bounds each wait. 0 means 60s.
	Timeout time.Duration
}

// RunTimeout runs the payment-timeout scenario of a process manager:
// an OrderPlaced starts an instance that schedules a payment timeout;
//
//   - order A is paid first: the payment cancels the deadline and ends
//     the instance; a redelivered payment is not applied twice;
//   - order B is not paid: the deadline fires, its handler dispatches
//     CancelOrder (once, carrying the correlation ID, caused by the
//     deadline) and ends the instance; a redelivered OrderPlaced is not
//     applied twice and a payment after the end is ignored.
func RunTimeout(t *testing.T, h *Harness) {
	ctx := t.Context()
	if h.Timeout == 0 {
		h.Timeout = 60 * time.Second
	}
	reg := h.Registry
	for _, err := range []error{
		eventbus.Register[OrderPlaced](reg, eventbus.AggregateType(OrderType)),
		eventbus.Register[PaymentTimedOut](reg, eventbus.AggregateType(OrderType)),
		eventbus.Register[PaymentReceived](reg, eventbus.AggregateType(PaymentType)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}

	type sent struct {
		cmd CancelOrder
		md  aggregate.Metadata
	}
	var (
		mu       sync.Mutex
		commands []sent
	)
	bus, err := cqrs.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cqrs.HandleCommand(bus, func(ctx context.Context, c CancelOrder) (struct{}, error) {
		mu.Lock()
		defer mu.Unlock()
		commands = append(commands, sent{c, aggregate.MetadataFromContext(ctx)})
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	rcfg := &eventbus.RouterConfig{Logger: slog.New(slog.DiscardHandler)}
	if h.RouterConfig != nil {
		rcfg = h.RouterConfig
	}
	router, err := eventbus.NewRouter(h.Transport, reg, rcfg)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := process.New[Payment](router, "payment", h.Store, &process.Config{Bus: bus, Scheduler: h.Outbox, Logger: rcfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(process.StartOn(pm, func(e OrderPlaced, _ aggregate.Envelope) string { return e.Order },
		func(ctx context.Context, s *Payment, e OrderPlaced, env aggregate.Envelope, pc *process.Context) error {
			s.Placed++
			return pc.Schedule(ctx, "timeout", env.OccurredAt.Add(e.Timeout), PaymentTimedOut{Order: e.Order})
		}))
	must(process.On(pm, func(e PaymentReceived, _ aggregate.Envelope) string { return e.Order },
		func(ctx context.Context, s *Payment, _ PaymentReceived, _ aggregate.Envelope, pc *process.Context) error {
			s.Paid++
			cancelled, err := pc.Cancel(ctx, "timeout")
			s.Cancelled = cancelled
			pc.End()
			return err
		}))
	must(process.On(pm, func(e PaymentTimedOut, _ aggregate.Envelope) string { return e.Order },
		func(ctx context.Context, s *Payment, e PaymentTimedOut, _ aggregate.Envelope, pc *process.Context) error {
			s.TimedOut++
			if err := process.Dispatch(ctx, pc, CancelOrder{Order: e.Order}); err != nil {
				return err
			}
			pc.End()
			return nil
		}))
	// One handler per event type and process: a second one is refused.
	if err := process.On(pm, func(PaymentReceived, aggregate.Envelope) string { return "" },
		func(context.Context, *Payment, PaymentReceived, aggregate.Envelope, *process.Context) error {
			return nil
		}); err == nil {
		t.Error("a second handler for PaymentReceived was accepted")
	}

	relay, err := outbox.NewRelay(h.Outbox, h.Publisher, reg, &outbox.RelayConfig{PollInterval: time.Hour, Logger: rcfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	outboxtest.Start(t, relay, h.Timeout)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("router: %v", err)
			}
		case <-time.After(h.Timeout):
			t.Error("router did not stop")
		}
	})
	<-router.Running()
	pub, err := eventbus.NewPublisher(h.Publisher, reg)
	if err != nil {
		t.Fatal(err)
	}

	suffix := uuidv7.New().String()
	orderA, orderB := "A-"+suffix, "B-"+suffix
	envelope := func(typ, id string, e aggregate.Event, md aggregate.Metadata) aggregate.Envelope {
		return aggregate.Envelope{ID: uuidv7.New().String(), Name: e.EventName(), AggregateType: typ, AggregateID: id,
			Version: 1, OccurredAt: time.Now(), Metadata: md, Payload: e}
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		end := time.Now().Add(h.Timeout)
		for !cond() {
			if time.Now().After(end) {
				t.Fatalf("gave up after %s waiting for %s", h.Timeout, what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	state := func(key string) (Payment, bool, bool) {
		t.Helper()
		s, ended, found, err := pm.Load(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return s, ended, found
	}

	// (a) Order A, paid long before its timeout: the payment cancels the
	// deadline and ends the instance.
	placedA := envelope(OrderType, orderA, OrderPlaced{Order: orderA, Timeout: time.Hour}, aggregate.Metadata{CorrelationID: "corr-A"})
	must(h.Write(ctx, placedA))
	eventually("order A's instance", func() bool { _, _, found := state(orderA); return found })
	paidA := envelope(PaymentType, orderA, PaymentReceived{Order: orderA}, aggregate.Metadata{CorrelationID: "corr-A"})
	must(h.Write(ctx, paidA))
	eventually("order A's instance to end", func() bool { _, ended, _ := state(orderA); return ended })
	must(pub.Publish(ctx, paidA)) // redelivered

	// (b) Order B, never paid: the deadline fires, CancelOrder is
	// dispatched, the instance ends. OrderPlaced is delivered twice.
	placedB := envelope(OrderType, orderB, OrderPlaced{Order: orderB, Timeout: 300 * time.Millisecond}, aggregate.Metadata{CorrelationID: "corr-B"})
	must(h.Write(ctx, placedB))
	eventually("order B's instance", func() bool { _, _, found := state(orderB); return found })
	must(pub.Publish(ctx, placedB)) // redelivered
	eventually("order B's instance to end", func() bool { _, ended, _ := state(orderB); return ended })
	lateB := envelope(PaymentType, orderB, PaymentReceived{Order: orderB}, aggregate.Metadata{CorrelationID: "corr-B"})
	must(pub.Publish(ctx, lateB))
	// A marker after the redeliveries on each topic: once its instance
	// exists, the router has handled what came before it there.
	marker := "M-" + suffix
	must(pub.Publish(ctx, envelope(OrderType, marker, OrderPlaced{Order: marker, Timeout: time.Hour}, aggregate.Metadata{})))
	eventually("the marker's instance", func() bool { _, _, found := state(marker); return found })
	must(pub.Publish(ctx, envelope(PaymentType, marker, PaymentReceived{Order: marker}, aggregate.Metadata{})))
	eventually("the marker's instance to end", func() bool { _, ended, _ := state(marker); return ended })

	a, _, _ := state(orderA)
	if a != (Payment{Placed: 1, Paid: 1, Cancelled: true}) {
		t.Errorf("order A: %+v, want placed once, paid once, its deadline cancelled", a)
	}
	if ok, err := h.Outbox.Cancel(ctx, "payment/"+orderA+"/timeout"); err != nil || ok {
		t.Errorf("order A's deadline still scheduled (Cancel = %v, %v)", ok, err)
	}
	b, _, _ := state(orderB)
	if b != (Payment{Placed: 1, TimedOut: 1}) {
		t.Errorf("order B: %+v, want placed once, timed out once, the late payment ignored", b)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(commands) != 1 || commands[0].cmd.Order != orderB {
		t.Fatalf("commands %+v, want one CancelOrder of order B", commands)
	}
	md := commands[0].md
	if md.CorrelationID != "corr-B" || md.CausationID == "" || md.CausationID == placedB.ID {
		t.Errorf("CancelOrder's metadata %+v: want correlation corr-B, caused by the deadline (not by %s)", md, placedB.ID)
	}
}
