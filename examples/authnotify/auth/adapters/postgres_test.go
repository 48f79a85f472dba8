package adapters_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/valueobject"
)

// The PostgreSQL adapter keeps the port's promises like the in-memory one:
// case-insensitive unique addresses, events in the outbox with the state,
// versions checked.
func TestPostgresUsers(t *testing.T) {
	t.Parallel()
	dbURL, _ := pgtest.SchemaURL(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test"})
	require.NoError(t, authevents.Register(reg))
	box, err := postgres.NewOutbox(pool, reg, nil)
	require.NoError(t, err)

	b := setup(t) // for its factory and users
	repo, err := adapters.NewPostgres(b.factory, pool, box)
	require.NoError(t, err)

	u := b.newUser(t, "Ada@Example.com")
	require.NoError(t, repo.Add(ctx, u))
	require.ErrorIs(t, repo.Add(ctx, b.newUser(t, "ada@EXAMPLE.com")), domain.ErrEmailTaken)

	email, _ := valueobject.ParseEmail("ADA@example.com")
	got, err := repo.ByEmail(ctx, email)
	require.NoError(t, err)
	require.Equal(t, canonical(u.Snapshot()), canonical(got.Snapshot()))

	require.NoError(t, repo.Update(ctx, id(t, u), func(u *domain.User) error { return u.Verify("123456", "reg-token") }))
	got, err = repo.ByID(ctx, id(t, u))
	require.NoError(t, err)
	require.True(t, got.IsVerified())
	require.Equal(t, int64(2), got.CommittedVersion())

	_, err = repo.ByID(ctx, valueobject.NewID())
	require.ErrorIs(t, err, aggregate.ErrNotFound)

	pending, err := box.List(ctx, outbox.StatusPending, 0, 0)
	require.NoError(t, err)
	require.Len(t, pending, 2, "registered and verified, nothing of the refused duplicate")
	require.Equal(t, "auth.user_registered", pending[0].Event.Name)
	require.Equal(t, "auth.user_verified", pending[1].Event.Name)
}
