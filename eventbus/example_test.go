package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

// UserRegistered is a domain event: a plain struct with a stable name.
type UserRegistered struct {
	Email string `json:"email"`
}

func (UserRegistered) EventName() string { return "auth.user_registered" }

var quiet = slog.New(slog.DiscardHandler)

// Register the event types, subscribe a handler and publish, all in
// memory.
func Example() {
	ctx := context.Background()
	reg := eventbus.NewRegistry(nil)
	if err := eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user")); err != nil {
		fmt.Println(err)
		return
	}

	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: quiet})
	defer transport.Close()
	router, _ := eventbus.NewRouter(transport, reg, &eventbus.RouterConfig{Logger: quiet})
	err := eventbus.Handle(router, "welcome-mail", func(ctx context.Context, e UserRegistered, env aggregate.Envelope) error {
		fmt.Printf("%s of %s %s: send a welcome mail to %s (correlation %s)\n",
			env.Name, env.AggregateType, env.AggregateID, e.Email, env.Metadata.CorrelationID)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = router.Run(ctx) }()
	defer router.Close()
	<-router.Running()

	pub, _ := eventbus.NewPublisher(transport.Publisher(), reg)
	reqCtx := aggregate.ContextWithMetadata(ctx, aggregate.Metadata{CorrelationID: "req-1"})
	err = pub.Publish(reqCtx, aggregate.Envelope{
		ID: "event-1", AggregateType: "user", AggregateID: "user-1", Version: 1,
		Payload: UserRegistered{Email: "ada@example.com"},
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// auth.user_registered of user user-1: send a welcome mail to ada@example.com (correlation req-1)
}

// ShippingAddressChanged is at schema version 2: version 1 had a single
// "Address" line.
type ShippingAddressChanged struct {
	Street string `json:"street"`
	City   string `json:"city"`
}

func (ShippingAddressChanged) EventName() string { return "shop.shipping_address_changed" }
func (ShippingAddressChanged) EventVersion() int { return 2 }

// An upcaster turns an old payload still on the topic into today's shape.
func ExampleUpcaster() {
	reg := eventbus.NewRegistry(nil)
	err := eventbus.Register[ShippingAddressChanged](reg,
		eventbus.AggregateType("order"),
		eventbus.Upcaster(1, func(p json.RawMessage) (json.RawMessage, error) {
			var v1 struct{ Address string }
			if err := json.Unmarshal(p, &v1); err != nil {
				return nil, err
			}
			return json.Marshal(ShippingAddressChanged{Street: v1.Address, City: "(unknown)"})
		}))
	if err != nil {
		fmt.Println(err)
		return
	}

	// A message written by a producer from before version 2.
	old := message.NewMessage("ev-1", []byte(`{"Address":"1 Main St"}`))
	old.Metadata = message.Metadata{
		eventbus.HeaderEventName:     "shop.shipping_address_changed",
		eventbus.HeaderEventVersion:  "1",
		eventbus.HeaderAggregateType: "order",
		eventbus.HeaderAggregateID:   "order-7",
	}
	env, err := reg.Decode(old)
	fmt.Printf("%+v of %s, err=%v\n", env.Payload, env.AggregateID, err)
	// Output: {Street:1 Main St City:(unknown)} of order-7, err=<nil>
}

// Encode shows what travels on the wire: JSON payload, envelope in
// headers, event ID as message UUID.
func ExampleRegistry_Encode() {
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
	msg, err := reg.Encode(aggregate.Envelope{
		ID: "0190a6a0-0000-7000-8000-000000000001", Name: "auth.user_registered",
		AggregateType: "user", AggregateID: "user-1", Version: 1,
		Metadata: aggregate.Metadata{CorrelationID: "req-1", Values: map[string]string{"tenant": "acme"}},
		Payload:  UserRegistered{Email: "ada@example.com"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("topic:", reg.Topic("user"))
	fmt.Println("payload:", string(msg.Payload))
	keys := make([]string, 0, len(msg.Metadata))
	for k := range msg.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf("%s: %s\n", k, msg.Metadata[k])
	}
	// Output:
	// topic: user.events
	// payload: {"email":"ada@example.com"}
	// aggregate_id: user-1
	// aggregate_type: user
	// aggregate_version: 1
	// content_type: application/json
	// correlation_id: req-1
	// event_id: 0190a6a0-0000-7000-8000-000000000001
	// event_name: auth.user_registered
	// event_version: 1
	// x-meta-tenant: acme
}

// Money is a value object whose fields are unexported.
type Money struct {
	amount   int64  //nolint:unused // set by constructors in real code
	currency string //nolint:unused // set by constructors in real code
}

// PaymentReceived has a Money field that encoding/json would send as {}.
type PaymentReceived struct {
	Amount Money `json:"amount"`
}

func (PaymentReceived) EventName() string { return "billing.payment_received" }

// Register refuses an event type that would not arrive as it was sent.
func ExampleRegister_lossy() {
	reg := eventbus.NewRegistry(nil)
	err := eventbus.Register[PaymentReceived](reg, eventbus.AggregateType("invoice"))
	fmt.Println(errors.Is(err, eventbus.ErrLossyEvent))
	fmt.Println(err)
	// Output:
	// true
	// eventbus: register billing.payment_received (eventbus_test.PaymentReceived): eventbus: event type would lose data in encoding: field Amount: eventbus_test.Money has unexported fields (amount, currency) that encoding/json drops: the value travels as {} and arrives as its zero value; export them or give it MarshalJSON and UnmarshalJSON (or MarshalText and UnmarshalText)
}

// HandleOnce runs the handler through an inbox: its effects happen once
// per event, however often the event is delivered. In production the
// inbox is postgres.NewInbox (package github.com/dddkit/dddkit/postgres):
// the handler's context then carries the inbox's transaction, and what it
// writes there (postgres.TxFromContext, a repository, a River job) commits
// with the inbox row.
func ExampleHandleOnce() {
	ctx := context.Background()
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: quiet})
	defer transport.Close()
	router, _ := eventbus.NewRouter(transport, reg, &eventbus.RouterConfig{Logger: quiet})
	err := eventbus.HandleOnce(router, "mail-queue", eventbus.NewMemoryInbox(), func(ctx context.Context, e UserRegistered, env aggregate.Envelope) error {
		fmt.Printf("queue a mail to %s for event %s\n", e.Email, env.ID)
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	go func() { _ = router.Run(ctx) }()
	defer router.Close()
	<-router.Running()

	pub, _ := eventbus.NewPublisher(transport.Publisher(), reg)
	env := aggregate.Envelope{
		ID: "event-1", AggregateType: "user", AggregateID: "user-1", Version: 1,
		Payload: UserRegistered{Email: "ada@example.com"},
	}
	_ = pub.Publish(ctx, env, env) // delivered twice, handled once
	// Output: queue a mail to ada@example.com for event event-1
}
