package repository_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/retry"
)

// User is a domain aggregate: state unexported, changed only through
// behaviour methods that record events.
type User struct {
	aggregate.Root
	email    string
	verified bool
}

type UserRegistered struct {
	Email string `json:"email"`
}

func (UserRegistered) EventName() string { return "auth.user_registered" }

type UserVerified struct{}

func (UserVerified) EventName() string { return "auth.user_verified" }

var errAlreadyVerified = errors.New("user is already verified")

func RegisterUser(id, email string) (*User, error) {
	u := &User{}
	u.Init(id, "user", u.apply)
	return u, u.Record(UserRegistered{Email: email})
}

func (u *User) Verify() error {
	if u.verified {
		return errAlreadyVerified
	}
	return u.Record(UserVerified{})
}

func (u *User) apply(e aggregate.Event) error {
	switch e := e.(type) {
	case UserRegistered:
		u.email = e.Email
	case UserVerified:
		u.verified = true
	default:
		return fmt.Errorf("unknown event %T", e)
	}
	return nil
}

// userRow is the stored form of a User. It belongs to the adapter layer;
// the domain type needs no tags.
type userRow struct {
	Email    string `json:"email"`
	Verified bool   `json:"verified"`
}

// newOutbox returns an in-memory outbox whose registry knows the User
// events: a service registers each event type once, and the outbox, the
// event store and the consumers all use that one registry.
func newOutbox() *outbox.Memory {
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
	_ = eventbus.Register[UserVerified](reg, eventbus.AggregateType("user"))
	ob, _ := outbox.NewMemory(reg)
	return ob
}

// userMapping is all the storage code the User aggregate needs.
func userMapping() repository.Mapping[*User] {
	m := repository.JSON("user",
		func(u *User) userRow { return userRow{Email: u.email, Verified: u.verified} },
		func(id string, r userRow) (*User, error) {
			u := &User{email: r.Email, verified: r.Verified}
			u.Init(id, "user", u.apply)
			return u, nil
		})
	m.Keys = func(u *User) []repository.Key { return []repository.Key{{Name: "email", Value: u.email}} }
	return m
}

// The in-memory adapter: save, update in the style of a command handler,
// load by a unique key, and the events that reach the outbox.
func Example() {
	ctx := context.Background()
	events := newOutbox()
	users, err := repository.NewMemory(events, userMapping(), nil)
	if err != nil {
		fmt.Println(err)
		return
	}

	u, _ := RegisterUser("u1", "ada@example.com")
	fmt.Println("save:", users.Save(ctx, u), "version", u.CommittedVersion())

	// A command handler: the request's correlation ID travels with the
	// events the domain method records.
	ctx = aggregate.ContextWithMetadata(ctx, aggregate.Metadata{CorrelationID: "req-42"})
	fmt.Println("verify:", users.Update(ctx, "u1", (*User).Verify))
	fmt.Println("verify again:", users.Update(ctx, "u1", (*User).Verify))

	byEmail, _ := users.LoadByKey(ctx, "email", "ada@example.com")
	fmt.Println("by email:", byEmail.ID(), "verified:", byEmail.verified, "version:", byEmail.Version())

	dup, _ := RegisterUser("u2", "ada@example.com")
	fmt.Println("duplicate email:", errors.Is(users.Save(ctx, dup), repository.ErrDuplicateKey))

	for _, e := range events.Pending() {
		fmt.Printf("outbox: %s %s v%d correlation=%q\n", e.Name, e.AggregateID, e.Version, e.Metadata.CorrelationID)
	}
	// Output:
	// save: <nil> version 1
	// verify: <nil>
	// verify again: user is already verified
	// by email: u1 verified: true version: 2
	// duplicate email: true
	// outbox: auth.user_registered u1 v1 correlation=""
	// outbox: auth.user_verified u1 v2 correlation="req-42"
}

// Two writers load the same version; the second save is refused and
// writes nothing.
func Example_concurrencyConflict() {
	ctx := context.Background()
	users, _ := repository.NewMemory(newOutbox(), userMapping(), nil)
	u, _ := RegisterUser("u1", "ada@example.com")
	_ = users.Save(ctx, u)

	first, _ := users.Load(ctx, "u1")
	second, _ := users.Load(ctx, "u1")
	_ = first.Verify()
	_ = second.Verify()
	fmt.Println("first:", users.Save(ctx, first))
	err := users.Save(ctx, second)
	fmt.Println("second:", err)

	var conflict *aggregate.ConflictError
	if errors.As(err, &conflict) {
		fmt.Println("expected", conflict.Expected, "found", conflict.Actual)
	}
	// Output:
	// first: <nil>
	// second: aggregate: concurrency conflict on user u1: expected version 1, found 2
	// expected 1 found 2
}

// Update retries on a conflict when its config has a Retry policy: each
// attempt loads the aggregate afresh and runs the function again.
func ExampleMemory_Update_retry() {
	ctx := context.Background()
	users, _ := repository.NewMemory(newOutbox(), userMapping(), &repository.MemoryConfig{
		Retry: &retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond},
	})
	u, _ := RegisterUser("u1", "ada@example.com")
	_ = users.Save(ctx, u)

	attempts := 0
	err := users.Update(ctx, "u1", func(u *User) error {
		attempts++
		if attempts == 1 {
			// Another request verifies the user first.
			other, _ := users.Load(ctx, "u1")
			_ = other.Verify()
			_ = users.Save(ctx, other)
		}
		return u.Verify()
	})
	fmt.Println("attempts:", attempts, "error:", err)
	// Output: attempts: 2 error: user is already verified
}
