package domain

import (
	"context"

	"github.com/dddkit/dddkit/valueobject"
)

// Repository is the port through which the application reads and writes
// users. Adapters (auth/adapters, on dddkit's repository package):
// PostgreSQL with the outbox in production, in memory when embedded.
// Whatever the adapter, the events a user recorded are stored (and later
// published) if and only if its state is.
type Repository interface {
	// ByID returns the user with the given ID, or an error wrapping
	// aggregate.ErrNotFound.
	ByID(ctx context.Context, id valueobject.ID) (*User, error)

	// ByEmail returns the user with the given address, compared in
	// [CanonicalEmail] form, or an error wrapping aggregate.ErrNotFound.
	ByEmail(ctx context.Context, email valueobject.Email) (*User, error)

	// Add stores a new user and its events. An address another user has
	// gives [ErrEmailTaken], an ID another user has an error wrapping
	// aggregate.ErrAlreadyExists; either way nothing is stored.
	Add(ctx context.Context, u *User) error

	// Update loads the user, runs fn on it and, if fn returns nil, stores
	// its new state and events in one atomic step, provided nobody else
	// changed the user meanwhile (otherwise an error wrapping
	// aggregate.ErrConcurrencyConflict, and nothing is stored). An error
	// from fn is returned unchanged and nothing is stored. The adapter
	// owns the transaction; fn must not keep u.
	Update(ctx context.Context, id valueobject.ID, fn func(u *User) error) error
}
