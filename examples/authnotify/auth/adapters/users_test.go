package adapters_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
	"github.com/dddkit/dddkit/valueobject"
)

// The adapter must satisfy the port.
var _ domain.Repository = (*adapters.Memory)(nil)
var _ domain.Repository = (*adapters.Users)(nil)

type sink struct {
	mu     sync.Mutex
	events []aggregate.Envelope
	fail   error
}

func (s *sink) Append(_ context.Context, events ...aggregate.Envelope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.events = append(s.events, events...)
	return nil
}

func (s *sink) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.events {
		out = append(out, e.Name)
	}
	return out
}

type bundle struct {
	repo    *adapters.Memory
	sink    *sink
	factory *domain.Factory
	hash    string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	cipher, err := fieldcrypt.New(bytes.Repeat([]byte{1}, fieldcrypt.KeySize))
	require.NoError(t, err)
	factory, err := domain.NewFactory(cipher, cipher.DeriveKey("otp"), &domain.FactoryConfig{
		RegistrationTokens: func() (string, error) { return "reg-token", nil },
		Codes:              func() (string, error) { return "123456", nil },
	})
	require.NoError(t, err)
	s := &sink{}
	repo, err := adapters.NewMemory(factory, s)
	require.NoError(t, err)
	hasher, err := valueobject.NewHasher(&valueobject.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1})
	require.NoError(t, err)
	pw, err := valueobject.NewPassword("correct horse")
	require.NoError(t, err)
	hash, err := hasher.Hash(pw)
	require.NoError(t, err)
	return &bundle{repo: repo, sink: s, factory: factory, hash: hash}
}

func (b *bundle) newUser(t *testing.T, email string) *domain.User {
	t.Helper()
	e, err := valueobject.ParseEmail(email)
	require.NoError(t, err)
	u, err := b.factory.Register(valueobject.NewID(), e, b.hash)
	require.NoError(t, err)
	return u
}

func id(t *testing.T, u *domain.User) valueobject.ID {
	t.Helper()
	v, err := valueobject.ParseID(u.ID())
	require.NoError(t, err)
	return v
}

func TestAddAndLoad(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := aggregate.ContextWithMetadata(context.Background(), aggregate.Metadata{CorrelationID: "req-1"})
	u := b.newUser(t, "Ada@Example.com")
	require.NoError(t, b.repo.Add(ctx, u))
	require.False(t, u.HasChanges(), "marked committed")
	require.Equal(t, int64(1), u.CommittedVersion())
	require.Equal(t, 1, b.repo.Len())
	require.Equal(t, []string{"auth.user_registered"}, b.sink.names())
	require.Equal(t, "req-1", b.sink.events[0].Metadata.CorrelationID, "request metadata stamped on the events")

	got, err := b.repo.ByID(ctx, id(t, u))
	require.NoError(t, err)
	require.Equal(t, canonical(u.Snapshot()), canonical(got.Snapshot()), "state survives the JSON round trip")
	require.Equal(t, int64(1), got.CommittedVersion())
	require.False(t, got.HasChanges())

	email, _ := valueobject.ParseEmail("ADA@example.com")
	got, err = b.repo.ByEmail(ctx, email)
	require.NoError(t, err, "looked up case-insensitively")
	require.Equal(t, u.ID(), got.ID())
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.repo.ByID(ctx, valueobject.NewID())
	require.ErrorIs(t, err, aggregate.ErrNotFound)
	email, _ := valueobject.ParseEmail("nobody@example.com")
	_, err = b.repo.ByEmail(ctx, email)
	require.ErrorIs(t, err, aggregate.ErrNotFound)
	err = b.repo.Update(ctx, valueobject.NewID(), func(*domain.User) error { return nil })
	require.ErrorIs(t, err, aggregate.ErrNotFound)
}

func TestAddDuplicateEmail(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	require.NoError(t, b.repo.Add(ctx, b.newUser(t, "ada@example.com")))
	dup := b.newUser(t, "ADA@example.com")
	require.ErrorIs(t, b.repo.Add(ctx, dup), domain.ErrEmailTaken)
	require.Equal(t, 1, b.repo.Len(), "nothing stored")
	require.Len(t, b.sink.names(), 1, "no events")
	require.True(t, dup.HasChanges())
}

func TestAddTwiceAndAddLoaded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.newUser(t, "ada@example.com")
	require.NoError(t, b.repo.Add(ctx, u))
	require.Error(t, b.repo.Add(ctx, u), "a loaded user is updated, not added")
	require.Error(t, b.repo.Add(ctx, nil))

	// A new user with a taken ID: refused as already existing, not as a
	// concurrency conflict that a retry would run again.
	e, err := valueobject.ParseEmail("grace@example.com")
	require.NoError(t, err)
	same, err := b.factory.Register(id(t, u), e, b.hash)
	require.NoError(t, err)
	err = b.repo.Add(ctx, same)
	require.ErrorIs(t, err, aggregate.ErrAlreadyExists)
	require.NotErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	require.Equal(t, 1, b.repo.Len())
}

func TestSinkFailureStoresNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.sink.fail = errors.New("outbox down")
	u := b.newUser(t, "ada@example.com")
	require.ErrorContains(t, b.repo.Add(context.Background(), u), "outbox down")
	require.Zero(t, b.repo.Len())
	require.True(t, u.HasChanges(), "not marked committed")
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.newUser(t, "ada@example.com")
	require.NoError(t, b.repo.Add(ctx, u))

	require.NoError(t, b.repo.Update(ctx, id(t, u), func(u *domain.User) error { return u.Verify("123456", "reg-token") }))
	got, err := b.repo.ByID(ctx, id(t, u))
	require.NoError(t, err)
	require.True(t, got.IsVerified())
	require.Equal(t, int64(2), got.CommittedVersion())
	require.Equal(t, []string{"auth.user_registered", "auth.user_verified"}, b.sink.names())
	require.Equal(t, int64(2), b.sink.events[1].Version)
}

func TestUpdateErrorStoresNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.newUser(t, "ada@example.com")
	require.NoError(t, b.repo.Add(ctx, u))
	boom := errors.New("boom")
	err := b.repo.Update(ctx, id(t, u), func(u *domain.User) error {
		require.ErrorIs(t, u.Verify("000000", "reg-token"), domain.ErrInvalidCode) // records an event ...
		return boom                                                                // ... that is not saved
	})
	require.ErrorIs(t, err, boom)
	got, err := b.repo.ByID(ctx, id(t, u))
	require.NoError(t, err)
	require.Zero(t, got.CodeFailures())
	require.Equal(t, int64(1), got.CommittedVersion())
	require.Len(t, b.sink.names(), 1)

	// No change, no save.
	require.NoError(t, b.repo.Update(ctx, id(t, u), func(*domain.User) error { return nil }))
	require.Len(t, b.sink.names(), 1)
}

func TestUpdateConflict(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.newUser(t, "ada@example.com")
	require.NoError(t, b.repo.Add(ctx, u))

	err := b.repo.Update(ctx, id(t, u), func(stale *domain.User) error {
		// Someone else changes the user between our load and our save.
		require.NoError(t, b.repo.Update(ctx, id(t, u), func(u *domain.User) error {
			_ = u.Verify("000000", "reg-token")
			return nil
		}))
		_ = stale.Verify("000000", "reg-token")
		return nil
	})
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	var conflict *aggregate.ConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, int64(1), conflict.Expected)
	require.Equal(t, int64(2), conflict.Actual)

	got, err := b.repo.ByID(ctx, id(t, u))
	require.NoError(t, err)
	require.Equal(t, 1, got.CodeFailures(), "only the winner's attempt counted")
}

// Parallel wrong guesses cannot get around the attempt limit: each failed
// attempt moves the version, so concurrent ones conflict instead of all
// saving "attempt 1". With retries, exactly MaxCodeAttempts are counted
// and the rest see a dead code.
func TestConcurrentWrongCodesRespectTheLimit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	u := b.newUser(t, "ada@example.com")
	require.NoError(t, b.repo.Add(ctx, u))

	uid := id(t, u)
	const guessers = 20
	results := make(chan error, guessers)
	var wg sync.WaitGroup
	for range guessers {
		wg.Go(func() {
			for {
				var rejected error
				err := b.repo.Update(ctx, uid, func(u *domain.User) error {
					rejected = u.Verify("000000", "reg-token")
					if errors.Is(rejected, domain.ErrInvalidCode) {
						return nil // the failed attempt must be saved
					}
					return rejected
				})
				if errors.Is(err, aggregate.ErrConcurrencyConflict) {
					time.Sleep(time.Millisecond)
					continue
				}
				if err == nil {
					err = rejected
				}
				results <- err
				return
			}
		})
	}
	wg.Wait()
	close(results)
	counts := map[error]int{}
	for err := range results {
		switch {
		case errors.Is(err, domain.ErrInvalidCode):
			counts[domain.ErrInvalidCode]++
		case errors.Is(err, domain.ErrTooManyAttempts):
			counts[domain.ErrTooManyAttempts]++
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	require.Equal(t, domain.MaxCodeAttempts, counts[domain.ErrInvalidCode])
	require.Equal(t, guessers-domain.MaxCodeAttempts, counts[domain.ErrTooManyAttempts])

	got, err := b.repo.ByID(ctx, id(t, u))
	require.NoError(t, err)
	require.Equal(t, domain.MaxCodeAttempts, got.CodeFailures())
	require.ErrorIs(t, got.Verify("123456", "reg-token"), domain.ErrTooManyAttempts)
}

func TestSinkFunc(t *testing.T) {
	t.Parallel()
	var got []string
	f := adapters.SinkFunc(func(_ context.Context, events ...aggregate.Envelope) error {
		for _, e := range events {
			got = append(got, e.Name)
		}
		return nil
	})
	require.NoError(t, f.Append(context.Background(), aggregate.Envelope{Name: "x"}))
	require.Equal(t, []string{"x"}, got)
}

// canonical drops what a JSON round trip does not keep and nobody needs:
// monotonic clock readings and the time zone of the instants.
func canonical(s domain.Snapshot) domain.Snapshot {
	for _, t := range []*time.Time{&s.CreatedAt, &s.VerifiedAt, &s.PasswordChangedAt, &s.CodeIssuedAt, &s.CodeExpiresAt} {
		*t = t.Round(0).UTC()
	}
	return s
}
