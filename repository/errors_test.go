package repository_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// The unique key values of the test are personal data: they must not show
// in error messages, and so not in the cqrs logging middleware's lines.
const secretName = "ada@example.com"

type createCounter struct{ ID, Name string }

func TestErrorsLeaveKeyValuesOut(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	repo, err := repository.NewMemory(memOutbox(t), repositorytest.Mapping(), nil)
	require.NoError(t, err)

	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus, err := cqrs.New(&cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger)}})
	require.NoError(t, err)
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, c createCounter) (struct{}, error) {
		counter, err := repositorytest.NewCounter(c.ID, c.Name)
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, repo.Save(ctx, counter)
	}))

	require.NoError(t, cqrs.Exec(ctx, bus, createCounter{ID: "c1", Name: secretName}))
	err = cqrs.Exec(ctx, bus, createCounter{ID: "c2", Name: secretName})
	require.ErrorIs(t, err, repository.ErrDuplicateKey)
	require.EqualError(t, err, "repository: duplicate key: repositorytest.counter c2: name is taken by another repositorytest.counter")
	var de *repository.DuplicateKeyError
	require.ErrorAs(t, err, &de)
	require.Equal(t, secretName, de.Key.Value, "the value stays available to code")
	require.True(t, cqrs.IsRefusal(err), "a taken key is a refusal")

	_, err = repo.LoadByKey(ctx, "name", "grace@example.com")
	require.ErrorIs(t, err, aggregate.ErrNotFound)
	require.NotContains(t, err.Error(), "grace@example.com")

	require.Contains(t, buf.String(), `level=INFO msg="cqrs: command refused"`)
	require.NotContains(t, buf.String(), "example.com", "no key value in the log")
}
