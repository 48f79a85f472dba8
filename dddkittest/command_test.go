package dddkittest_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/repository"
)

// A command that adds to a counter, handled over the in-memory repository
// and outbox, as a service running embedded does.
type addToCounter struct {
	ID string
	By int
}

func counterBus(t *testing.T) (*cqrs.Bus, *outbox.Memory) {
	t.Helper()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test"})
	require.NoError(t, eventbus.Register[added](reg, eventbus.AggregateType("counter")))
	require.NoError(t, eventbus.Register[closedEvent](reg, eventbus.AggregateType("counter")))
	ob, err := outbox.NewMemory(reg)
	require.NoError(t, err)
	repo, err := repository.NewMemory(ob, repository.Mapping[*counter]{
		Type:   "counter",
		Encode: func(a *counter) ([]byte, error) { return json.Marshal([2]any{a.n, a.closed}) },
		Decode: func(id string, state []byte) (*counter, error) {
			a := &counter{}
			a.Init(id, "counter", a.apply)
			var s [2]any
			if err := json.Unmarshal(state, &s); err != nil {
				return nil, err
			}
			a.n, a.closed = int(s[0].(float64)), s[1].(bool)
			return a, nil
		},
	}, nil)
	require.NoError(t, err)
	bus, err := cqrs.New(nil)
	require.NoError(t, err)
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, cmd addToCounter) (int, error) {
		c, err := repo.Load(ctx, cmd.ID)
		if errors.Is(err, aggregate.ErrNotFound) {
			c, err = newCounter(), nil
		}
		if err != nil {
			return 0, err
		}
		if err := c.Add(cmd.By); err != nil {
			return 0, err
		}
		return c.n, repo.Save(ctx, c)
	}))
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, id string) (struct{}, error) {
		return struct{}{}, repo.Update(ctx, id, func(c *counter) error { return c.Close("by command") })
	}))
	return bus, ob
}

func TestSendThenOutboxHoldsTheCommandsEvents(t *testing.T) {
	t.Parallel()
	bus, ob := counterBus(t)
	ctx := context.Background()
	cmds := dddkittest.NewCommands(t, bus, ob)
	dddkittest.Send[int](ctx, cmds, addToCounter{ID: "c-1", By: 2}).ThenOutbox(added{By: 2})
	s := dddkittest.Send[int](ctx, cmds, addToCounter{ID: "c-1", By: 3}).ThenOutbox(added{By: 3})
	require.Equal(t, 5, s.Result())
	require.Len(t, ob.Pending(), 2, "the earlier command's event is still there, but not counted again")

	dddkittest.Send[struct{}](ctx, cmds, "c-1").ThenOutbox(closedEvent{Reason: "by command"})
	dddkittest.Send[int](ctx, cmds, addToCounter{ID: "c-1", By: 1}).ThenError(errClosed)
}

func TestSendReportsTheOutboxDiffAndWrongErrors(t *testing.T) {
	t.Parallel()
	bus, ob := counterBus(t)
	ctx := context.Background()

	ft := &fakeT{}
	dddkittest.Send[int](ctx, dddkittest.NewCommands(ft, bus, ob), addToCounter{ID: "c-1", By: 2}).ThenOutbox(added{By: 20})
	require.Len(t, ft.errors, 1)
	require.Contains(t, ft.errors[0], "Diff:")
	require.Contains(t, ft.errors[0], "-  By: (int) 20")
	require.Contains(t, ft.errors[0], "+  By: (int) 2")

	ft = &fakeT{}
	dddkittest.Send[int](ctx, dddkittest.NewCommands(ft, bus, ob), addToCounter{ID: "c-1", By: 2}).ThenError(errClosed)
	require.Len(t, ft.errors, 1, "success where an error was expected fails")
	require.Contains(t, ft.errors[0], "got no error (added counter.added")

	ft = &fakeT{}
	dddkittest.Send[struct{}](ctx, dddkittest.NewCommands(ft, bus, ob), "c-1").ThenOutbox()
	require.Len(t, ft.errors, 1, "an event where none was expected fails")

	ft = &fakeT{}
	dddkittest.Send[int](ctx, dddkittest.NewCommands(ft, bus, ob), addToCounter{ID: "c-1", By: 1}).ThenOutbox(added{By: 1})
	require.Len(t, ft.errors, 1, "an error where events were expected fails")
	require.Contains(t, ft.errors[0], "counter closed")

	ft = &fakeT{}
	dddkittest.Send[int](ctx, dddkittest.NewCommands(ft, bus, ob), addToCounter{ID: "c-1", By: 1}).ThenError(cqrs.ErrNoHandler)
	require.Len(t, ft.errors, 1, "a different error fails")
}

// ThenPublished relays the outbox and checks what was published for the
// command, decoded as a consumer receives it; an earlier command's
// events, published by the same flush, do not count.
func TestSendThenPublished(t *testing.T) {
	t.Parallel()
	bus, ob := counterBus(t)
	ctx := context.Background()
	cmds := dddkittest.NewCommands(t, bus, ob)
	dddkittest.Send[int](ctx, cmds, addToCounter{ID: "c-1", By: 2}).ThenOutbox(added{By: 2})
	s := dddkittest.Send[int](ctx, cmds, addToCounter{ID: "c-1", By: 3}).ThenOutbox(added{By: 3}).ThenPublished(added{By: 3})
	require.Empty(t, ob.Pending(), "the relay published both")
	pub := s.Published()
	require.Len(t, pub, 1)
	require.Equal(t, eventbus.DefaultTopic("counter"), pub[0].Topic)
	require.Equal(t, "c-1", pub[0].Event.AggregateID)
	require.Equal(t, int64(2), pub[0].Event.Version)
	dddkittest.Send[struct{}](ctx, cmds, "c-1").ThenPublished(closedEvent{Reason: "by command"})

	ft := &fakeT{}
	fresh, freshOutbox := counterBus(t)
	dddkittest.Send[int](ctx, dddkittest.NewCommands(ft, fresh, freshOutbox), addToCounter{ID: "c-1", By: 4}).ThenPublished(added{By: 5})
	require.Len(t, ft.errors, 1)
	require.Contains(t, ft.errors[0], "then published")
	require.Contains(t, ft.errors[0], "+  By: (int) 4")

	ft = &fakeT{}
	dddkittest.Send[int](ctx, dddkittest.NewCommands(ft, bus, ob), addToCounter{ID: "c-1", By: 1}).ThenPublished(added{By: 1})
	require.Len(t, ft.errors, 1, "an error where events were expected fails")
	require.Contains(t, ft.errors[0], "counter closed")
}
