package outbox_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/retry"
)

type UserRegistered struct {
	Email string `json:"email"`
}

func (UserRegistered) EventName() string { return "auth.user_registered" }

type EmailVerified struct{}

func (EmailVerified) EventName() string { return "auth.email_verified" }

// The in-memory outbox relayed through watermill's GoChannel: what the
// example system runs with no database and no broker.
func Example() {
	ctx := context.Background()

	// The service's one registry: it encodes the events and names their
	// topic ("user" → "user.events"), for the relay and the consumers.
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
	_ = eventbus.Register[EmailVerified](reg, eventbus.AggregateType("user"))
	box, _ := outbox.NewMemory(reg)

	// A repository appends an aggregate's events when its save commits.
	_ = box.Append(ctx,
		aggregate.Envelope{ID: "e1", Name: "auth.user_registered", AggregateType: "user", AggregateID: "u-1", Version: 1,
			Payload: UserRegistered{Email: "ada@example.com"}, Metadata: aggregate.Metadata{CorrelationID: "req-7"}},
		aggregate.Envelope{ID: "e2", Name: "auth.email_verified", AggregateType: "user", AggregateID: "u-1", Version: 2,
			Payload: EmailVerified{}, Metadata: aggregate.Metadata{CorrelationID: "req-7"}},
	)
	fmt.Println("pending:", len(box.Pending()))

	// GoChannel keeps order only when Publish waits for the subscriber's ack.
	bus := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	defer bus.Close()
	msgs, _ := bus.Subscribe(ctx, reg.Topic("user"))
	go func() {
		for m := range msgs {
			fmt.Println(m.Metadata.Get(eventbus.HeaderAggregateID), m.Metadata.Get(eventbus.HeaderAggregateVersion),
				m.Metadata.Get(eventbus.HeaderEventName), m.Metadata.Get(eventbus.HeaderCorrelationID), string(m.Payload))
			m.Ack()
		}
	}()

	relay, _ := outbox.NewRelay(box, bus, reg, nil)
	n, err := relay.Flush(ctx) // a service runs relay.Run(ctx) instead
	fmt.Println("published:", n, err, "pending:", len(box.Pending()))
	// Output:
	// pending: 2
	// u-1 1 auth.user_registered req-7 {"email":"ada@example.com"}
	// u-1 2 auth.email_verified req-7 {}
	// published: 2 <nil> pending: 0
}

// flakyPublisher refuses the events of one aggregate while down is set.
type flakyPublisher struct {
	down string
	sent []string
}

func (p *flakyPublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		if m.Metadata.Get(eventbus.HeaderAggregateID) == p.down {
			return errors.New("message too large")
		}
	}
	for _, m := range msgs {
		p.sent = append(p.sent, m.Metadata.Get(eventbus.HeaderAggregateID)+" v"+m.Metadata.Get(eventbus.HeaderAggregateVersion))
	}
	return nil
}

func (p *flakyPublisher) Close() error { return nil }

// An event the publisher keeps refusing fails after Retry.MaxAttempts and
// holds back the later events of its aggregate, and only those; once the
// cause is fixed, the operator's retry publishes them in order.
func ExampleMemory_RetryFailed() {
	ctx := context.Background()
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
	_ = eventbus.Register[EmailVerified](reg, eventbus.AggregateType("user"))
	box, _ := outbox.NewMemory(reg)
	_ = box.Append(ctx,
		aggregate.Envelope{ID: "e1", Name: "auth.user_registered", AggregateType: "user", AggregateID: "u-1", Version: 1,
			Payload: UserRegistered{Email: "ada@example.com"}},
		aggregate.Envelope{ID: "e2", Name: "auth.user_registered", AggregateType: "user", AggregateID: "u-2", Version: 1,
			Payload: UserRegistered{Email: "grace@example.com"}},
		aggregate.Envelope{ID: "e3", Name: "auth.email_verified", AggregateType: "user", AggregateID: "u-1", Version: 2,
			Payload: EmailVerified{}},
	)

	pub := &flakyPublisher{down: "u-1"}
	relay, _ := outbox.NewRelay(box, pub, reg, &outbox.RelayConfig{
		Retry: retry.Policy{MaxAttempts: 1}, // the first failure is final
		Hooks: outbox.Hooks{OnAttemptFailed: func(f outbox.AttemptFailure) {
			fmt.Printf("%s v%d failed (final %t): %v\n", f.Event.AggregateID, f.Event.Version, f.Final, f.Err)
		}},
	})

	n, _ := relay.Flush(ctx)
	st, _ := box.Stats(ctx)
	fmt.Println("published:", n, pub.sent, "failed:", st.Failed, "pending:", st.Pending)

	pub.down = "" // the cause is fixed
	fmt.Println("retried:", box.RetryFailed())
	n, _ = relay.Flush(ctx)
	fmt.Println("published:", n, pub.sent)
	// Output:
	// u-1 v1 failed (final true): message too large
	// published: 1 [u-2 v1] failed: 1 pending: 1
	// retried: 1
	// published: 2 [u-2 v1 u-1 v1 u-1 v2]
}
