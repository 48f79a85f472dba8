package eventbus_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

// A handler gives up on user-1's first event: user-1's next event waits
// behind it while user-2's is handled. After the fix, a replay handles
// user-1's events in order.
func ExampleReplayDeadLetter() {
	ctx := context.Background()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:service:shop"})
	if err := eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user")); err != nil {
		fmt.Println(err)
		return
	}
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: quiet})
	defer transport.Close()
	deadLetters := eventbus.NewMemoryDeadLetters() // postgres.NewDeadLetters in production
	router, _ := eventbus.NewRouter(transport, reg, &eventbus.RouterConfig{Logger: quiet, DeadLetters: deadLetters})
	broken := true
	err := eventbus.Handle(router, "welcome-mail", func(ctx context.Context, e UserRegistered, env aggregate.Envelope) error {
		if broken && e.Email == "bad@example.com" {
			return eventbus.Permanent(errors.New("mail server refuses the address"))
		}
		fmt.Printf("mail %s (%s version %d)\n", e.Email, env.AggregateID, env.Version)
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
	for _, env := range []aggregate.Envelope{
		{ID: "e1", AggregateType: "user", AggregateID: "user-1", Version: 1, Payload: UserRegistered{Email: "bad@example.com"}},
		{ID: "e2", AggregateType: "user", AggregateID: "user-1", Version: 2, Payload: UserRegistered{Email: "ada@example.com"}},
		{ID: "e3", AggregateType: "user", AggregateID: "user-2", Version: 1, Payload: UserRegistered{Email: "bob@example.com"}},
	} {
		if err := pub.Publish(ctx, env); err != nil {
			fmt.Println(err)
		}
	}
	list, _ := deadLetters.List(ctx, "welcome-mail")
	for _, dl := range list {
		fmt.Printf("dead letter of %s: %s (%s), %d parked\n", dl.Key, dl.Event.ID, dl.Reason, dl.Parked)
	}

	broken = false // the fix
	if err := eventbus.ReplayDeadLetter(ctx, deadLetters, transport.Publisher(), "welcome-mail", "user-1"); err != nil {
		fmt.Println(err)
	}
	list, _ = deadLetters.List(ctx, "welcome-mail")
	fmt.Println("dead letters left:", len(list))
	// Output:
	// mail bob@example.com (user-2 version 1)
	// dead letter of user-1: e1 (mail server refuses the address), 1 parked
	// mail bad@example.com (user-1 version 1)
	// mail ada@example.com (user-1 version 2)
	// dead letters left: 0
}
