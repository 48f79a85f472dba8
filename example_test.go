package dddkit_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/valueobject"
)

// Subscriber is a tiny aggregate: a newsletter subscription.
type Subscriber struct {
	aggregate.Root
	email  valueobject.Email
	active bool
}

// Subscribed is its event; the name is stable, whatever the Go type is called.
type Subscribed struct {
	Email string `json:"email"`
}

func (Subscribed) EventName() string { return "newsletter.subscribed" }

func (s *Subscriber) apply(e aggregate.Event) error {
	switch e := e.(type) {
	case Subscribed:
		email, err := valueobject.ParseEmail(e.Email)
		if err != nil {
			return err
		}
		s.email, s.active = email, true
		return nil
	}
	return fmt.Errorf("unknown event %T", e)
}

// Subscribe is the command; the bus's validation middleware calls Validate.
type Subscribe struct{ Email string }

func (c Subscribe) Validate() error {
	_, err := valueobject.ParseEmail(c.Email)
	return err
}

// The first steps of the path: command bus → handler → aggregate → event.
// A repository would then save the aggregate and its events in one
// transaction, and the outbox relay would publish the events.
func Example() {
	bus, _ := cqrs.New(&cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Validation()}})
	recorded := map[string][]aggregate.Envelope{} // stands in for the repository

	_ = cqrs.HandleCommand(bus, func(ctx context.Context, c Subscribe) (string, error) {
		s := &Subscriber{}
		s.Init(valueobject.NewID().String(), "subscriber", s.apply)
		if err := s.Record(Subscribed{Email: c.Email}); err != nil {
			return "", err
		}
		recorded[s.ID()] = s.Changes()
		return s.ID(), nil
	})

	id, err := cqrs.Send[string](context.Background(), bus, Subscribe{Email: "Ada@Example.COM"})
	fmt.Println("subscribed:", err == nil, len(recorded[id]), "event:", recorded[id][0].Name)

	_, err = cqrs.Send[string](context.Background(), bus, Subscribe{Email: "not-an-email"})
	var fieldErr *valueobject.Error
	fmt.Println("rejected:", errors.Is(err, cqrs.ErrValidation), errors.As(err, &fieldErr) && fieldErr.Field == "email")
	// Output:
	// subscribed: true 1 event: newsletter.subscribed
	// rejected: true true
}
