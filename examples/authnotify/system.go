package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
	"github.com/dddkit/dddkit/examples/authnotify/internal/hashlimit"
	"github.com/dddkit/dddkit/examples/authnotify/internal/throttle"
	"github.com/dddkit/dddkit/valueobject"
)

// system is the wired application of one mode: the command bus the HTTP
// port dispatches on, the mode's extra routes, its readiness check and the
// components that run in the background.
type system struct {
	bus        *cqrs.Bus
	routes     func(mux *http.ServeMux)
	ready      func(ctx context.Context) error
	components []component // started in order, stopped in reverse order
	close      func()      // releases what is left once every component stopped
}

// component is something that runs in the background until its context
// ends: a relay, a router, a job queue.
type component struct {
	name string
	// run runs the component until ctx ends, then stops it gracefully and
	// returns. Returning earlier is a failure that stops the application.
	run func(ctx context.Context) error
	// started, if set, is closed once the component is up; the next one
	// starts only then.
	started <-chan struct{}
}

// shared are the parts both modes build the same way.
type shared struct {
	cipher   *fieldcrypt.Cipher
	factory  *domain.Factory
	tokens   *app.Tokens
	registry *eventbus.Registry
}

// codeKeyPurpose derives the key one-time codes are hashed with from the
// field encryption key.
const codeKeyPurpose = "authnotify/otp-hash/v1"

func buildShared(cfg config.Config) (*shared, error) {
	cipher, err := fieldcrypt.NewRing(cfg.FieldKeys)
	if err != nil {
		return nil, fmt.Errorf("FIELD_ENCRYPTION_KEY: %w", err)
	}
	codeKeys := cipher.DeriveKeys(codeKeyPurpose) // the first hashes; all verify (key rotation)
	factory, err := domain.NewFactory(cipher, codeKeys[0], &domain.FactoryConfig{OldCodeKeys: codeKeys[1:]})
	if err != nil {
		return nil, err
	}
	keys := make([]app.Key, 0, len(cfg.JWTKeys))
	for _, k := range cfg.JWTKeys {
		keys = append(keys, app.Key{ID: k.ID, Secret: k.Secret})
	}
	tokens, err := app.NewTokens(keys, nil)
	if err != nil {
		return nil, fmt.Errorf("JWT_SECRET: %w", err)
	}
	registry, err := newRegistry(cfg.TopicPrefix)
	if err != nil {
		return nil, err
	}
	return &shared{cipher: cipher, factory: factory, tokens: tokens, registry: registry}, nil
}

// newRegistry returns the event registry of the service, with the one
// topic rule used by the relay and the consumers alike and the CloudEvents
// source of every event the service produces; `authnotify catalog`
// describes it.
func newRegistry(topicPrefix string) (*eventbus.Registry, error) {
	registry := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:authnotify", Topic: func(aggregateType string) string {
		return topicPrefix + eventbus.DefaultTopic(aggregateType)
	}})
	if err := errors.Join(authevents.Register(registry), adapters.RegisterDeadlines(registry)); err != nil {
		return nil, err
	}
	return registry, nil
}

// limitHashes bounds the password hashes running at once (both modes):
// argon2id takes 19 MiB and a CPU each, so unbounded they exhaust memory
// and starve every other request under a burst of registrations or
// logins. Over the bound, requests answer 503 with Retry-After.
func limitHashes(cfg config.Config, h domain.PasswordHasher) (domain.PasswordHasher, error) {
	if h == nil {
		h = &valueobject.Hasher{} // argon2id, OWASP parameters
	}
	return hashlimit.New(h, &hashlimit.Config{Max: cfg.MaxConcurrentHashes, Wait: cfg.HashWait})
}

// throttleConfig is the login throttle's configuration in both modes.
func throttleConfig(cfg config.Config) *throttle.Config {
	return &throttle.Config{PerAddress: cfg.LoginLimitPerAddress}
}

// newBus returns the command and query bus with the recommended
// middleware stack, and registers the auth module's handlers on it. With
// a unit of work (production), every command handler runs in one
// transaction: its repository writes, their outbox rows and anything else
// it writes commit together; the handlers contain no transaction code.
func newBus(logger *slog.Logger, uow cqrs.UnitOfWork, deps app.Deps) (*cqrs.Bus, error) {
	retry, err := cqrs.Retry(nil)
	if err != nil {
		return nil, err
	}
	// Retry outside the transaction: each attempt is a fresh unit of work
	// that loads the aggregates again.
	commands := []cqrs.Middleware{cqrs.Logging(logger), cqrs.Metrics(), cqrs.Recover(), cqrs.Validation(), retry}
	if uow != nil {
		commands = append(commands, cqrs.Transaction(uow))
	}
	bus, err := cqrs.New(&cqrs.Config{
		CommandMiddleware: commands,
		QueryMiddleware:   []cqrs.Middleware{cqrs.Logging(logger), cqrs.Metrics(), cqrs.Recover(), cqrs.Validation()},
	})
	if err != nil {
		return nil, err
	}
	if err := app.Register(bus, deps); err != nil {
		return nil, err
	}
	if err := bus.Validate(); err != nil {
		return nil, err
	}
	return bus, nil
}
