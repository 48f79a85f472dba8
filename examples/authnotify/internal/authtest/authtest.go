// Package authtest holds the test doubles and set-up the auth module's
// domain, app and HTTP tests share: an event sink, cheap
// password hashing, the bus with the production middleware, and opening the
// sealed code an event carries. (The clock is dddkittest.Clock.)
package authtest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
	"github.com/dddkit/dddkit/valueobject"
)

// Events is an event sink for the in-memory repository that keeps every
// event it is given, safe for concurrent use.
type Events struct {
	mu  sync.Mutex
	all []aggregate.Envelope
}

// Append keeps envs.
func (e *Events) Append(_ context.Context, envs ...aggregate.Envelope) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, envs...)
	return nil
}

// Len returns how many events were appended.
func (e *Events) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.all)
}

// All returns a copy of the appended events, oldest first.
func (e *Events) All() []aggregate.Envelope {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]aggregate.Envelope(nil), e.all...)
}

// Names returns the names of the appended events, oldest first.
func (e *Events) Names() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Names(e.all)
}

// Last returns the latest event; it fails the test when there is none.
func (e *Events) Last(t testing.TB) aggregate.Envelope {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	require.NotEmpty(t, e.all, "no event appended")
	return e.all[len(e.all)-1]
}

// Names returns the events' names in order (never nil).
func Names(envs []aggregate.Envelope) []string {
	out := make([]string, 0, len(envs))
	for _, e := range envs {
		out = append(out, e.Name)
	}
	return out
}

// Hasher returns an argon2id hasher with cheap parameters: the tests are
// about rules, not cost.
func Hasher(t testing.TB) *valueobject.Hasher {
	t.Helper()
	h, err := valueobject.NewHasher(&valueobject.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1})
	require.NoError(t, err)
	return h
}

// Bus returns a bus with the middleware the application runs with:
// logging (to logger), recovery, validation, and retry on concurrency
// conflicts for commands.
func Bus(t testing.TB, logger *slog.Logger) *cqrs.Bus {
	t.Helper()
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	retry, err := cqrs.Retry(nil)
	require.NoError(t, err)
	bus, err := cqrs.New(&cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger), cqrs.Recover(), cqrs.Validation(), retry},
		QueryMiddleware:   []cqrs.Middleware{cqrs.Logging(logger), cqrs.Recover(), cqrs.Validation()},
	})
	require.NoError(t, err)
	return bus
}

// OpenCode opens the sealed code env carries, as the notification module
// does; it fails the test for an event without a code.
func OpenCode(t testing.TB, cipher *fieldcrypt.Cipher, env aggregate.Envelope) string {
	t.Helper()
	var sealed string
	switch e := env.Payload.(type) {
	case authevents.UserRegistered:
		sealed = e.EncryptedCode
	case authevents.UserOtpRequested:
		sealed = e.EncryptedCode
	case authevents.PasswordResetRequested:
		sealed = e.EncryptedCode
	default:
		t.Fatalf("event %s carries no code", env.Name)
	}
	code, err := cipher.Open(sealed, env.AggregateID)
	require.NoError(t, err)
	return code
}
