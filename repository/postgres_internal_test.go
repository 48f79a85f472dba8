package repository

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
)

func TestConflictOrMapsDeadlocksAndSerializationFailures(t *testing.T) {
	t.Parallel()
	require.NoError(t, conflictOr(nil, "user", "u1", 3))

	plain := errors.New("boom")
	require.Same(t, plain, conflictOr(plain, "user", "u1", 3))
	unique := fmt.Errorf("save: %w", &pgconn.PgError{Code: "23505"})
	require.Equal(t, unique, conflictOr(unique, "user", "u1", 3))

	for _, code := range []string{"40P01", "40001"} {
		cause := fmt.Errorf("save: %w", &pgconn.PgError{Code: code})
		err := conflictOr(cause, "user", "u1", 3)
		require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
		var ce *aggregate.ConflictError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, int64(3), ce.Expected)
		require.Equal(t, int64(-1), ce.Actual)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, "the database error stays reachable")
		require.Equal(t, code, pgErr.Code)
	}
}

func TestRetryBackoff(t *testing.T) {
	t.Parallel()
	r, err := (&Retry{BaseDelay: 10, MaxDelay: 40}).normalize()
	require.NoError(t, err)
	require.Equal(t, 3, r.MaxAttempts)
	for attempt, bound := range map[int]int64{1: 10, 2: 20, 3: 40, 4: 40, 60: 40} {
		for range 50 {
			d := int64(r.backoff(attempt))
			require.GreaterOrEqual(t, d, bound/2, "attempt %d", attempt)
			require.LessOrEqual(t, d, bound, "attempt %d", attempt)
		}
	}
	none, err := (*Retry)(nil).normalize()
	require.NoError(t, err)
	require.Equal(t, 1, none.MaxAttempts)
	def, err := (&Retry{}).normalize()
	require.NoError(t, err)
	require.Equal(t, Retry{MaxAttempts: 3, BaseDelay: defaultBaseDelay, MaxDelay: defaultMaxDelay}, def)
}
