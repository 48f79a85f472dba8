package adapters_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/postgres"
)

// Both read models behave alike.
func TestActivityStores(t *testing.T) {
	t.Parallel()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		testActivityStore(t, adapters.NewMemoryActivity())
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		dbURL, _ := pgtest.SchemaURL(t)
		ctx := context.Background()
		pool, err := pgxpool.New(ctx, dbURL)
		require.NoError(t, err)
		t.Cleanup(pool.Close)
		require.NoError(t, adapters.MigrateActivity(ctx, pool))
		require.NoError(t, adapters.MigrateActivity(ctx, pool), "idempotent")
		store, err := adapters.NewPostgresActivity(pool)
		require.NoError(t, err)
		testActivityStore(t, store)

		// Writes join the unit of work of their context.
		uow, err := postgres.NewUnitOfWork(pool)
		require.NoError(t, err)
		err = uow.Do(ctx, func(ctx context.Context) error {
			require.NoError(t, store.Add(ctx, "carol", "c1", "registered", time.Now()))
			return context.Canceled // roll back
		})
		require.ErrorIs(t, err, context.Canceled)
		got, err := store.List(ctx, "carol")
		require.NoError(t, err)
		require.Empty(t, got, "rolled back with the unit of work")
	})
}

func testActivityStore(t *testing.T, s adapters.ActivityStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	got, err := s.List(ctx, "ada")
	require.NoError(t, err)
	require.Empty(t, got)

	require.NoError(t, s.Add(ctx, "ada", "e2", "verified", t0.Add(time.Minute)))
	require.NoError(t, s.Add(ctx, "ada", "e1", "registered", t0))
	require.NoError(t, s.Add(ctx, "bob", "e3", "registered", t0))
	require.Error(t, s.Add(ctx, "ada", "e1", "registered", t0), "an event added twice is a projection bug, not hidden")

	got, err = s.List(ctx, "ada")
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, []string{"registered", "verified"}, []string{got[0].Type, got[1].Type})
	require.True(t, got[0].At.Equal(t0) && got[1].At.Equal(t0.Add(time.Minute)))

	require.NoError(t, s.Reset(ctx))
	for _, user := range []string{"ada", "bob"} {
		got, err = s.List(ctx, user)
		require.NoError(t, err)
		require.Equal(t, []app.ActivityEntry{}, append([]app.ActivityEntry{}, got...))
	}
}
