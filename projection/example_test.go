package projection_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/projection"
	"github.com/dddkit/dddkit/repository"
)

// User is an event-sourced aggregate.
type User struct {
	aggregate.Root
	verified bool
}

type UserRegistered struct{ Email string }

func (UserRegistered) EventName() string { return "auth.user_registered" }

type UserVerified struct{}

func (UserVerified) EventName() string { return "auth.user_verified" }

func newUser(id string) *User {
	u := &User{}
	u.Init(id, "user", u.apply)
	return u
}

func (u *User) apply(e aggregate.Event) error {
	if _, ok := e.(UserVerified); ok {
		u.verified = true
	}
	return nil
}

// Activity is an in-memory read model: what happened to each account.
// It stages its writes with projection.OnCommit, so that they commit
// with the projection's checkpoint.
type Activity struct {
	mu   sync.Mutex
	byID map[string][]string
}

func (a *Activity) add(ctx context.Context, userID, what string) {
	projection.OnCommit(ctx, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.byID[userID] = append(a.byID[userID], what)
	})
}

// A read model fed by a projection from the event store's stream: the
// projection declares its events with typed handlers, a Runner applies
// them in batches with the checkpoint, and a rebuild starts it over.
func Example() {
	ctx := context.Background()
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
	_ = eventbus.Register[UserVerified](reg, eventbus.AggregateType("user"))
	ob, _ := outbox.NewMemory(reg)
	log, _ := repository.NewMemoryEventLog(ob, nil)
	users, _ := repository.NewMemoryEventStore(log, repository.EventMapping[*User]{Type: "user", New: newUser}, nil)

	// The read model and its projection.
	activity := &Activity{byID: map[string][]string{}}
	p, _ := projection.New("activity", reg)
	_ = projection.On(p, func(ctx context.Context, e UserRegistered, env aggregate.Envelope) error {
		activity.add(ctx, env.AggregateID, "registered as "+e.Email)
		return nil
	})
	_ = projection.On(p, func(ctx context.Context, _ UserVerified, env aggregate.Envelope) error {
		activity.add(ctx, env.AggregateID, "verified")
		return nil
	})
	p.OnReset(func(ctx context.Context) error {
		projection.OnCommit(ctx, func() { clear(activity.byID) })
		return nil
	})

	// Some history.
	for _, id := range []string{"u1", "u2"} {
		u := newUser(id)
		_ = u.Record(UserRegistered{Email: id + "@example.com"})
		_ = users.Save(ctx, u)
	}
	_ = users.Update(ctx, "u1", func(u *User) error { return u.Record(UserVerified{}) })

	store := projection.NewMemoryStore()
	runner, _ := projection.NewRunner(p, log, store, &projection.RunnerConfig{Logger: slog.New(slog.DiscardHandler)})
	// Run follows the stream until ctx ends; CatchUp stops when it has
	// applied everything so far.
	if err := runner.CatchUp(ctx); err != nil {
		fmt.Println(err)
	}
	for _, id := range slices.Sorted(maps.Keys(activity.byID)) {
		fmt.Println(id, activity.byID[id])
	}
	st, _ := runner.Status(ctx)
	fmt.Printf("position %d of %d, %d applied, lag %d\n", st.Position, st.Head, st.Applied, st.LagEvents)

	// A rebuild clears the read model and replays the stream.
	_ = runner.Rebuild(ctx, func(pr projection.Progress) {
		fmt.Printf("rebuilding: %d of %d\n", pr.Position, pr.Target)
	})
	fmt.Println(len(activity.byID["u1"]), "entries for u1 after the rebuild")
	// Output:
	// u1 [registered as u1@example.com verified]
	// u2 [registered as u2@example.com]
	// position 3 of 3, 3 applied, lag 0
	// rebuilding: 3 of 3
	// 2 entries for u1 after the rebuild
}
