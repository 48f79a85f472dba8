package cqrs_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// CreateCounter creates the counter with the given ID; the ID is the
// caller's, as with client-generated IDs or natural keys.
type CreateCounter struct{ ID, Name string }

type discardSink struct{}

func (discardSink) Append(context.Context, ...aggregate.Envelope) error { return nil }

// Creating an aggregate whose ID is taken fails the same way on every
// attempt, so the retry middleware must hand the error back after one
// attempt instead of re-running the command for nothing (and reporting
// "failed after 3 attempts: concurrency conflict").
func TestRetryDoesNotRerunAlreadyExists(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	counters, err := repository.NewMemory(discardSink{}, repositorytest.Mapping(), nil)
	require.NoError(t, err)
	retry, err := cqrs.Retry(nil)
	require.NoError(t, err)
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{retry}})

	var calls int
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, cmd CreateCounter) (struct{}, error) {
		calls++
		c, err := repositorytest.NewCounter(cmd.ID, cmd.Name)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, counters.Save(ctx, c)
	}))

	require.NoError(t, cqrs.Exec(ctx, bus, CreateCounter{ID: "c1", Name: "first"}))
	require.Equal(t, 1, calls)

	calls = 0
	err = cqrs.Exec(ctx, bus, CreateCounter{ID: "c1", Name: "second"})
	require.ErrorIs(t, err, aggregate.ErrAlreadyExists)
	require.NotErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	var ae *aggregate.AlreadyExistsError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "c1", ae.ID)
	require.Equal(t, 1, calls, "a taken ID is not retried")

	// The same middleware does retry a real conflict, so the test above
	// proves the classification, not a middleware that never retries.
	calls = 0
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, cmd VerifyEmail) (struct{}, error) {
		calls++
		if calls == 1 {
			return struct{}{}, &aggregate.ConflictError{Type: repositorytest.CounterType, ID: "c1", Expected: 1, Actual: 2}
		}
		return struct{}{}, nil
	}))
	require.NoError(t, cqrs.Exec(ctx, bus, VerifyEmail{}))
	require.Equal(t, 2, calls)
}
