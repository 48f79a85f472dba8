package repository_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/repository"
)

// An in-memory event store whose log is a [repository.Stream]: a
// follower catches up on the events saved so far, then follows new
// saves, as a projection does.
func ExampleFollow() {
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
	_ = eventbus.Register[UserVerified](reg, eventbus.AggregateType("user"))
	ob, _ := outbox.NewMemory(reg)
	log, _ := repository.NewMemoryEventLog(ob, nil)
	users, _ := repository.NewMemoryEventStore(log, repository.EventMapping[*User]{
		Type: "user",
		New: func(id string) *User {
			u := &User{}
			u.Init(id, "user", u.apply)
			return u
		},
	}, nil)

	ctx, stop := context.WithCancel(context.Background())
	ada, _ := RegisterUser("u1", "ada@example.com")
	_ = users.Save(ctx, ada)

	done := make(chan error)
	go func() {
		// Only verifications, from the start of the log.
		filter := repository.StreamFilter{EventNames: []string{UserVerified{}.EventName()}}
		done <- repository.Follow(ctx, log, 0, filter, 100, func(_ context.Context, events []repository.StoredEvent) error {
			for _, e := range events {
				fmt.Printf("%d: %s %s verified\n", e.Position, e.Event.AggregateType, e.Event.AggregateID)
			}
			stop() // one is enough for this example
			return nil
		})
	}()
	_ = users.Update(ctx, "u1", func(u *User) error { return u.Verify() })
	fmt.Println(errors.Is(<-done, context.Canceled))
	fmt.Println(log.Len(), "events in the log")
	// Output:
	// 2: user u1 verified
	// true
	// 2 events in the log
}
