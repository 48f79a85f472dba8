// Package adapters holds the auth module's adapters of the domain's
// ports: [Users], the [domain.Repository] built on dddkit's repository
// package, in two flavours that behave alike — [NewPostgres] (state in
// PostgreSQL, events into the outbox table in the same transaction) and
// [NewMemory] (the embedded default and unit tests; events handed to an
// in-memory outbox in the same atomic step).
//
// The adapter owns nothing but the mapping: [Mapping] copies a user's
// [domain.Snapshot] into a JSON document with tags of its own and back
// through [domain.Factory.Unmarshal], and declares the canonical email as
// a unique key. Versions, optimistic concurrency, the outbox and the
// uniqueness of addresses are dddkit's.
package adapters

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/valueobject"
)

// KeyEmail is the unique key under which users are found by address.
const KeyEmail = "email"

// userState is the stored form of a user: the domain snapshot with JSON
// names of its own, so that renaming a Go field never breaks stored rows.
type userState struct {
	Email             string        `json:"email"`
	PasswordHash      string        `json:"passwordHash"`
	Status            domain.Status `json:"status"`
	CreatedAt         time.Time     `json:"createdAt"`
	VerifiedAt        time.Time     `json:"verifiedAt,omitzero"`
	PasswordChangedAt time.Time     `json:"passwordChangedAt,omitzero"`
	CodeHash          []byte        `json:"codeHash,omitempty"`
	CodeIssuedAt      time.Time     `json:"codeIssuedAt,omitzero"`
	CodeExpiresAt     time.Time     `json:"codeExpiresAt,omitzero"`
	CodeFailures      int           `json:"codeFailures,omitempty"`
	RegistrationHash  []byte        `json:"registrationHash,omitempty"`
}

// Mapping is the repository mapping of the user aggregate: state as JSON,
// restored through factory, and the canonical email as unique key.
func Mapping(factory *domain.Factory) repository.Mapping[*domain.User] {
	m := repository.JSON(authevents.AggregateType,
		func(u *domain.User) userState {
			s := u.Snapshot()
			return userState{
				Email: s.Email, PasswordHash: s.PasswordHash, Status: s.Status,
				CreatedAt: s.CreatedAt, VerifiedAt: s.VerifiedAt, PasswordChangedAt: s.PasswordChangedAt,
				CodeHash: s.CodeHash, CodeIssuedAt: s.CodeIssuedAt, CodeExpiresAt: s.CodeExpiresAt, CodeFailures: s.CodeFailures,
				RegistrationHash: s.RegistrationHash,
			}
		},
		func(id string, s userState) (*domain.User, error) {
			return factory.Unmarshal(domain.Snapshot{
				ID: id, Email: s.Email, PasswordHash: s.PasswordHash, Status: s.Status,
				CreatedAt: s.CreatedAt, VerifiedAt: s.VerifiedAt, PasswordChangedAt: s.PasswordChangedAt,
				CodeHash: s.CodeHash, CodeIssuedAt: s.CodeIssuedAt, CodeExpiresAt: s.CodeExpiresAt, CodeFailures: s.CodeFailures,
				RegistrationHash: s.RegistrationHash,
			})
		})
	m.Keys = func(u *domain.User) []repository.Key {
		if u.IsExpired() {
			return nil // an expired account releases its address
		}
		return []repository.Key{{Name: KeyEmail, Value: domain.CanonicalEmail(u.Email()).String()}}
	}
	return m
}

// store is what Users needs of a dddkit repository; *repository.Postgres
// and *repository.Memory have it.
type store interface {
	repository.Repository[*domain.User]
	repository.KeyLoader[*domain.User]
}

// Users is the [domain.Repository] on a dddkit repository. It is safe for
// concurrent use.
type Users struct {
	store store
}

var _ domain.Repository = (*Users)(nil)

// NewPostgres returns users stored in PostgreSQL through db (a
// *pgxpool.Pool), their events written into ob in the same transaction
// (the unit of work of the command, when there is one). Run
// postgres.Migrate once at start-up.
func NewPostgres(factory *domain.Factory, db postgres.DB, ob *postgres.Outbox) (*Users, error) {
	if factory == nil {
		return nil, errors.New("auth/adapters: NewPostgres: nil factory")
	}
	pg, err := postgres.NewRepository(db, ob, Mapping(factory), nil)
	if err != nil {
		return nil, fmt.Errorf("auth/adapters: %w", err)
	}
	return &Users{store: pg}, nil
}

// Memory is [Users] kept in memory, with [Memory.Len] for tests.
type Memory struct {
	Users
	mem *repository.Memory[*domain.User]
}

// NewMemory returns users kept in memory whose events go to sink in the
// same atomic step as their state (an *outbox.Memory; nil drops them).
func NewMemory(factory *domain.Factory, sink EventSink) (*Memory, error) {
	if factory == nil {
		return nil, errors.New("auth/adapters: NewMemory: nil factory")
	}
	if sink == nil {
		sink = SinkFunc(func(context.Context, ...aggregate.Envelope) error { return nil })
	}
	mem, err := repository.NewMemory(sink, Mapping(factory), nil)
	if err != nil {
		return nil, fmt.Errorf("auth/adapters: %w", err)
	}
	return &Memory{Users: Users{store: mem}, mem: mem}, nil
}

// Len returns the number of stored users.
func (m *Memory) Len() int { return m.mem.Len() }

// EventSink receives the events of every save of a [Memory], oldest first,
// in the same atomic step as the state; if it fails, nothing is stored.
// *outbox.Memory implements it; so does [SinkFunc].
type EventSink = repository.EventSink

var _ EventSink = (*outbox.Memory)(nil)

// SinkFunc adapts a function to an [EventSink].
type SinkFunc func(ctx context.Context, events ...aggregate.Envelope) error

// Append calls f.
func (f SinkFunc) Append(ctx context.Context, events ...aggregate.Envelope) error {
	return f(ctx, events...)
}

// ByID implements [domain.Repository].
func (u *Users) ByID(ctx context.Context, id valueobject.ID) (*domain.User, error) {
	return u.store.Load(ctx, id.String())
}

// ByEmail implements [domain.Repository].
func (u *Users) ByEmail(ctx context.Context, email valueobject.Email) (*domain.User, error) {
	return u.store.LoadByKey(ctx, KeyEmail, domain.CanonicalEmail(email).String())
}

// Add implements [domain.Repository].
func (u *Users) Add(ctx context.Context, user *domain.User) error {
	if user == nil {
		return errors.New("auth/adapters: Add(nil)")
	}
	if !user.IsNew() {
		return fmt.Errorf("auth/adapters: Add: user %s was loaded from the store; use Update", user.ID())
	}
	return emailTaken(user.ID(), u.store.Save(ctx, user))
}

// Update implements [domain.Repository].
func (u *Users) Update(ctx context.Context, id valueobject.ID, fn func(*domain.User) error) error {
	return emailTaken(id.String(), u.store.Update(ctx, id.String(), fn))
}

// emailTaken turns the repository's duplicate key into the domain's error.
// The message names the user, not the address: it may end up in logs.
func emailTaken(id string, err error) error {
	if errors.Is(err, repository.ErrDuplicateKey) {
		return fmt.Errorf("%w (user %s)", domain.ErrEmailTaken, id)
	}
	return err
}
