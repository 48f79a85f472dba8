package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/eventbus/eventbustest"
	"github.com/dddkit/dddkit/postgres"
)

// The PostgreSQL store passes the dead-letter store suite.
func TestDeadLettersSuite(t *testing.T) {
	t.Parallel()
	eventbustest.RunDeadLetters(t, func(t *testing.T) eventbus.DeadLetters {
		pool := pgtest.Pool(t)
		require.NoError(t, postgres.Migrate(context.Background(), pool, nil))
		s, err := postgres.NewDeadLetters(pool, nil)
		require.NoError(t, err)
		return s
	})
}

func TestNewDeadLettersJoinsErrors(t *testing.T) {
	_, err := postgres.NewDeadLetters(nil, &postgres.DeadLettersConfig{Tables: postgres.Tables{DeadLetters: "x", Parked: "x"}})
	require.ErrorContains(t, err, "nil DB")
	require.ErrorContains(t, err, `Tables.DeadLetters and Tables.Parked are both "x"`)
}
