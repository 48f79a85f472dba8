package postgres

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
