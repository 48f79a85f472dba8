package process_test

import (
	"context"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/process"
)

// Events of two aggregate types (two topics) and a deadline.
type (
	OrderPlaced struct {
		OrderID string
		Timeout time.Duration
	}
	PaymentReceived struct{ OrderID string }
	PaymentTimedOut struct{ OrderID string }
)

func (OrderPlaced) EventName() string     { return "shop.order_placed" }
func (PaymentReceived) EventName() string { return "shop.payment_received" }
func (PaymentTimedOut) EventName() string { return "shop.payment_timed_out" }

// CancelOrder is the command a payment timeout leads to.
type CancelOrder struct{ OrderID string }

// Payment is the state of one instance of the payment process.
type Payment struct {
	Placed time.Time
}

// A payment process: an order starts an instance that schedules a
// payment timeout; a payment cancels it and ends the instance; the
// timeout cancels the order and ends the instance. In memory here; in
// production the store is postgres.NewProcessStore and the scheduler the
// *postgres.Outbox, and all of an event's effects commit in one
// transaction.
func ExampleManager() {
	ctx := context.Background()
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[OrderPlaced](reg, eventbus.AggregateType("order"))
	_ = eventbus.Register[PaymentTimedOut](reg, eventbus.AggregateType("order"))
	_ = eventbus.Register[PaymentReceived](reg, eventbus.AggregateType("payment"))
	ob, _ := outbox.NewMemory(reg)
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: quiet})
	defer transport.Close()
	router, _ := eventbus.NewRouter(transport, reg, &eventbus.RouterConfig{Logger: quiet})
	bus, _ := cqrs.New(nil)
	_ = cqrs.HandleCommand(bus, func(_ context.Context, c CancelOrder) (struct{}, error) {
		fmt.Println("cancel order", c.OrderID)
		return struct{}{}, nil
	})

	pm, _ := process.New[Payment](router, "payment", process.NewMemoryStore(),
		&process.Config{Bus: bus, Scheduler: ob, Logger: quiet})
	_ = process.StartOn(pm, func(e OrderPlaced, _ aggregate.Envelope) string { return e.OrderID },
		func(ctx context.Context, s *Payment, e OrderPlaced, env aggregate.Envelope, pc *process.Context) error {
			s.Placed = env.OccurredAt
			fmt.Println("order", pc.Key(), "waits for its payment")
			return pc.Schedule(ctx, "timeout", env.OccurredAt.Add(e.Timeout), PaymentTimedOut{OrderID: e.OrderID})
		})
	_ = process.On(pm, func(e PaymentReceived, _ aggregate.Envelope) string { return e.OrderID },
		func(ctx context.Context, _ *Payment, _ PaymentReceived, _ aggregate.Envelope, pc *process.Context) error {
			cancelled, err := pc.Cancel(ctx, "timeout")
			fmt.Println("order", pc.Key(), "paid; timeout cancelled:", cancelled)
			pc.End()
			return err
		})
	_ = process.On(pm, func(e PaymentTimedOut, _ aggregate.Envelope) string { return e.OrderID },
		func(ctx context.Context, _ *Payment, e PaymentTimedOut, _ aggregate.Envelope, pc *process.Context) error {
			pc.End()
			return process.Dispatch(ctx, pc, CancelOrder{OrderID: e.OrderID})
		})
	go func() { _ = router.Run(ctx) }()
	defer router.Close()
	<-router.Running()
	relay, _ := outbox.NewRelay(ob, transport.Publisher(), reg, &outbox.RelayConfig{Logger: quiet})

	write := func(typ, id string, e aggregate.Event) {
		_ = ob.Append(ctx, aggregate.Envelope{ID: typ + "-" + id + "-" + e.EventName(), Name: e.EventName(),
			AggregateType: typ, AggregateID: id, Version: 1, Payload: e})
		_, _ = relay.Flush(ctx) // in production relay.Run publishes as events are written and deadlines fall due
	}
	write("order", "o-1", OrderPlaced{OrderID: "o-1", Timeout: time.Hour})
	write("payment", "o-1", PaymentReceived{OrderID: "o-1"})
	write("order", "o-2", OrderPlaced{OrderID: "o-2"})       // a timeout of 0: due at once
	_, _ = relay.Flush(ctx)                                  // publishes o-2's deadline
	write("payment", "o-2", PaymentReceived{OrderID: "o-2"}) // too late: o-2 has ended

	_, ended, _, _ := pm.Load(ctx, "o-2")
	fmt.Println("o-2 ended:", ended)
	// Output:
	// order o-1 waits for its payment
	// order o-1 paid; timeout cancelled: true
	// order o-2 waits for its payment
	// cancel order o-2
	// o-2 ended: true
}

// SendWelcomeMail is a command of a notification module.
type SendWelcomeMail struct{ To string }

// UserRegistered is an event of an auth module.
type UserRegistered struct{ Email string }

func (UserRegistered) EventName() string { return "auth.user_registered" }

// Command turns an event into a command on the cqrs bus; the command's
// context carries the event's correlation ID and the event as causation.
func ExampleCommand() {
	ctx := context.Background()
	bus, _ := cqrs.New(nil)
	_ = cqrs.HandleCommand(bus, func(ctx context.Context, cmd SendWelcomeMail) (struct{}, error) {
		md := aggregate.MetadataFromContext(ctx)
		fmt.Printf("mail to %s, correlation %s, caused by %s\n", cmd.To, md.CorrelationID, md.CausationID)
		return struct{}{}, nil
	})

	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: quiet})
	defer transport.Close()
	router, _ := eventbus.NewRouter(transport, reg, &eventbus.RouterConfig{Logger: quiet})
	err := process.Command(router, "welcome", bus, func(_ context.Context, e UserRegistered, _ aggregate.Envelope) (SendWelcomeMail, error) {
		return SendWelcomeMail{To: e.Email}, nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = router.Run(ctx) }()
	defer router.Close()
	<-router.Running()

	pub, _ := eventbus.NewPublisher(transport.Publisher(), reg)
	_ = pub.Publish(ctx, aggregate.Envelope{
		ID: "event-1", AggregateType: "user", AggregateID: "user-1", Version: 1,
		Metadata: aggregate.Metadata{CorrelationID: "req-9"},
		Payload:  UserRegistered{Email: "ada@example.com"},
	})
	// Output: mail to ada@example.com, correlation req-9, caused by event-1
}
