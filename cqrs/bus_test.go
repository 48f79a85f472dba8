package cqrs_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cqrs"
)

// Test messages shared by the tests; every test builds its own bus.

type UserID string

type RegisterUser struct{ Email string }

func (RegisterUser) CommandName() string { return "user.register" }

func (c RegisterUser) Validate() error {
	if c.Email == "" {
		return &FieldError{Field: "email", Reason: "is required"}
	}
	return nil
}

type FieldError struct{ Field, Reason string }

func (e *FieldError) Error() string { return e.Field + " " + e.Reason }

type VerifyEmail struct{ ID UserID }

type GetUser struct{ ID UserID }

func (GetUser) QueryName() string { return "user.get" }

type UserView struct {
	ID    UserID
	Email string
}

type ListUsers struct{}

// PtrNamed has its name on the pointer receiver and is dispatched by pointer.
type PtrNamed struct{ N int }

func (*PtrNamed) CommandName() string { return "ptr.named" }

func newBus(t *testing.T, cfg *cqrs.Config) *cqrs.Bus {
	t.Helper()
	bus, err := cqrs.New(cfg)
	require.NoError(t, err)
	return bus
}

func registerUser(_ context.Context, c RegisterUser) (UserID, error) {
	return UserID("id-" + c.Email), nil
}

func TestSendAndAskReturnTypedResults(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	require.NoError(t, cqrs.HandleQuery(bus, func(_ context.Context, q GetUser) (UserView, error) {
		return UserView{ID: q.ID, Email: "ada@example.com"}, nil
	}))

	id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "ada"})
	require.NoError(t, err)
	require.Equal(t, UserID("id-ada"), id)

	view, err := cqrs.Ask[UserView](context.Background(), bus, GetUser{ID: id})
	require.NoError(t, err)
	require.Equal(t, UserView{ID: "id-ada", Email: "ada@example.com"}, view)
}

func TestSendPassesContextAndHandlerError(t *testing.T) {
	t.Parallel()
	type key struct{}
	boom := errors.New("boom")
	bus := newBus(t, nil)
	require.NoError(t, cqrs.HandleCommand(bus, func(ctx context.Context, c VerifyEmail) (int, error) {
		require.Equal(t, "v", ctx.Value(key{}))
		return 7, boom
	}))
	n, err := cqrs.Send[int](context.WithValue(context.Background(), key{}, "v"), bus, VerifyEmail{})
	require.Same(t, boom, err)
	require.Equal(t, 7, n, "the result is returned alongside the error, as the handler returned it")
}

func TestExecDiscardsResult(t *testing.T) {
	t.Parallel()
	for _, withMiddleware := range []bool{false, true} {
		t.Run(fmt.Sprint("middleware=", withMiddleware), func(t *testing.T) {
			t.Parallel()
			cfg := &cqrs.Config{}
			if withMiddleware {
				cfg.CommandMiddleware = []cqrs.Middleware{cqrs.Recover()}
			}
			bus := newBus(t, cfg)
			var got RegisterUser
			require.NoError(t, cqrs.HandleCommand(bus, func(_ context.Context, c RegisterUser) (UserID, error) {
				got = c
				return "x", nil
			}))
			require.NoError(t, cqrs.Exec(context.Background(), bus, RegisterUser{Email: "ada"}))
			require.Equal(t, RegisterUser{Email: "ada"}, got)

			err := cqrs.Exec(context.Background(), bus, VerifyEmail{})
			require.ErrorIs(t, err, cqrs.ErrNoHandler)
		})
	}
}

func TestHandleCommandRefusesDuplicate(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))

	err := cqrs.HandleCommand(bus, func(context.Context, RegisterUser) (string, error) { return "", nil })
	require.ErrorIs(t, err, cqrs.ErrDuplicateHandler)
	require.EqualError(t, err, "cqrs: duplicate handler for command user.register (cqrs_test.RegisterUser) (already registered, returning cqrs_test.UserID)")

	// The first registration still serves.
	id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: "a"})
	require.NoError(t, err)
	require.Equal(t, UserID("id-a"), id)
}

type otherRegisterUser struct{}

func (otherRegisterUser) CommandName() string { return "user.register" }

func TestHandleCommandRefusesDuplicateName(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	err := cqrs.HandleCommand(bus, func(context.Context, otherRegisterUser) (struct{}, error) { return struct{}{}, nil })
	require.ErrorIs(t, err, cqrs.ErrDuplicateHandler)
	require.EqualError(t, err, `cqrs: duplicate handler: command name "user.register" is used by both cqrs_test.RegisterUser and cqrs_test.otherRegisterUser`)
}

func TestHandleQueryRefusesDuplicate(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	h := func(context.Context, GetUser) (UserView, error) { return UserView{}, nil }
	require.NoError(t, cqrs.HandleQuery(bus, h))
	err := cqrs.HandleQuery(bus, h)
	require.ErrorIs(t, err, cqrs.ErrDuplicateHandler)
	require.ErrorContains(t, err, "query user.get (cqrs_test.GetUser)")
}

func TestDispatchWithoutHandler(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	ctx := context.Background()

	_, err := cqrs.Send[UserID](ctx, bus, RegisterUser{})
	require.ErrorIs(t, err, cqrs.ErrNoHandler)
	require.EqualError(t, err, "cqrs: no handler for command user.register (cqrs_test.RegisterUser)")

	_, err = cqrs.Send[struct{}](ctx, bus, VerifyEmail{})
	require.EqualError(t, err, "cqrs: no handler for command cqrs_test.VerifyEmail")

	_, err = cqrs.Ask[UserView](ctx, bus, GetUser{})
	require.ErrorIs(t, err, cqrs.ErrNoHandler)
	require.EqualError(t, err, "cqrs: no handler for query user.get (cqrs_test.GetUser)")
}

func TestCommandsAndQueriesAreSeparate(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, ListUsers) (int, error) { return 1, nil }))
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, ListUsers) (int, error) { return 2, nil }), "a type may be both, with two handlers")

	n, err := cqrs.Ask[int](context.Background(), bus, ListUsers{})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = cqrs.Send[int](context.Background(), bus, ListUsers{})
	require.NoError(t, err)
	require.Equal(t, 2, n)

	_, err = cqrs.Send[UserView](context.Background(), newBusWithQuery(t), GetUser{})
	require.ErrorIs(t, err, cqrs.ErrNoHandler, "a query handler does not serve Send")
}

func newBusWithQuery(t *testing.T) *cqrs.Bus {
	bus := newBus(t, nil)
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) { return UserView{}, nil }))
	return bus
}

func TestNoHandlerHintsAtPointerMismatch(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (struct{}, error) { return struct{}{}, nil }))
	err := cqrs.Exec(context.Background(), bus, &VerifyEmail{})
	require.ErrorIs(t, err, cqrs.ErrNoHandler)
	require.EqualError(t, err, "cqrs: no handler for command *cqrs_test.VerifyEmail (a handler is registered for cqrs_test.VerifyEmail)")
}

func TestSendWithWrongResultType(t *testing.T) {
	t.Parallel()
	for _, withMiddleware := range []bool{false, true} {
		t.Run(fmt.Sprint("middleware=", withMiddleware), func(t *testing.T) {
			t.Parallel()
			cfg := &cqrs.Config{}
			if withMiddleware {
				cfg.CommandMiddleware = []cqrs.Middleware{cqrs.Recover()}
			}
			bus := newBus(t, cfg)
			require.NoError(t, cqrs.HandleCommand(bus, registerUser))

			var got string
			require.NotPanics(t, func() {
				var err error
				got, err = cqrs.Send[string](context.Background(), bus, RegisterUser{Email: "a"})
				require.ErrorIs(t, err, cqrs.ErrResultType)
				require.EqualError(t, err, "cqrs: result type mismatch for command user.register (cqrs_test.RegisterUser): the handler returns cqrs_test.UserID, the caller asked for string")
			})
			require.Empty(t, got)
		})
	}
}

func TestCommandNameOnPointerReceiver(t *testing.T) {
	t.Parallel()
	var seen cqrs.Message
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{spy(&seen)}})
	require.NoError(t, cqrs.HandleCommand(bus, func(_ context.Context, c *PtrNamed) (int, error) { return c.N, nil }))
	n, err := cqrs.Send[int](context.Background(), bus, &PtrNamed{N: 4})
	require.NoError(t, err)
	require.Equal(t, 4, n)
	require.Equal(t, "ptr.named", seen.Name)

	_, err = cqrs.Send[int](context.Background(), bus, PtrNamed{})
	require.EqualError(t, err, "cqrs: no handler for command ptr.named (cqrs_test.PtrNamed) (a handler is registered for *cqrs_test.PtrNamed)")
}

func spy(into *cqrs.Message) cqrs.Middleware {
	return func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
		return func(ctx context.Context, msg cqrs.Message) (any, error) {
			*into = msg
			return next(ctx, msg)
		}
	}
}

func TestNewRejectsNilMiddleware(t *testing.T) {
	t.Parallel()
	_, err := cqrs.New(&cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{cqrs.Recover(), nil},
		QueryMiddleware:   []cqrs.Middleware{nil},
	})
	require.EqualError(t, err, "cqrs: Config.CommandMiddleware[1] is nil\ncqrs: Config.QueryMiddleware[0] is nil")
}

func TestMiddlewareReturningNilHandlerFunc(t *testing.T) {
	t.Parallel()
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{
		func(cqrs.HandlerFunc) cqrs.HandlerFunc { return nil },
	}})
	err := cqrs.HandleCommand(bus, registerUser)
	require.EqualError(t, err, "cqrs: command middleware 0 returned a nil HandlerFunc")
}

func TestMisuseGivesErrorsNotPanics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	require.NotPanics(t, func() {
		var nilBus *cqrs.Bus
		require.Error(t, cqrs.HandleCommand(nilBus, registerUser))
		require.Error(t, cqrs.HandleQuery(nilBus, func(context.Context, GetUser) (int, error) { return 0, nil }))
		_, err := cqrs.Send[UserID](ctx, nilBus, RegisterUser{})
		require.Error(t, err)
		_, err = cqrs.Ask[int](ctx, nilBus, GetUser{})
		require.Error(t, err)
		require.Error(t, cqrs.Exec(ctx, nilBus, RegisterUser{}))
		require.Error(t, nilBus.Validate())

		bus := newBus(t, nil)
		var nilHandler func(context.Context, RegisterUser) (UserID, error)
		require.EqualError(t, cqrs.HandleCommand(bus, nilHandler), "cqrs: nil handler for command user.register (cqrs_test.RegisterUser)")

		var zero cqrs.Bus // not made by New
		require.ErrorContains(t, cqrs.HandleCommand(&zero, registerUser), "not created with cqrs.New")
		_, err = cqrs.Send[UserID](ctx, &zero, RegisterUser{})
		require.ErrorIs(t, err, cqrs.ErrNoHandler)
	})
}

// TestConcurrentDispatch is meant for -race: many goroutines dispatch while
// more handlers are registered.
func TestConcurrentDispatch(t *testing.T) {
	t.Parallel()
	bus := newBus(t, &cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Recover(), cqrs.Validation()}})
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))

	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				email := fmt.Sprintf("%d-%d", g, i)
				id, err := cqrs.Send[UserID](context.Background(), bus, RegisterUser{Email: email})
				if err != nil || id != UserID("id-"+email) {
					t.Errorf("Send = %q, %v", id, err)
					return
				}
				_, _ = cqrs.Ask[UserView](context.Background(), bus, GetUser{})
			}
		})
	}
	wg.Go(func() {
		if err := cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) { return UserView{}, nil }); err != nil {
			t.Error(err)
		}
		if err := cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (int, error) { return 0, nil }); err != nil {
			t.Error(err)
		}
		bus.Expect(cqrs.Command[VerifyEmail]())
		_ = bus.Validate()
	})
	wg.Wait()
	require.NoError(t, bus.Validate())
}

func TestNoHandlerHintsAtInterfaceDispatch(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	var cmd any = RegisterUser{Email: "a"}
	_, err := cqrs.Send[UserID](context.Background(), bus, cmd)
	require.ErrorIs(t, err, cqrs.ErrNoHandler)
	require.EqualError(t, err, "cqrs: no handler for command interface {} (the value is a cqrs_test.RegisterUser, which has a handler: dispatch it with its own static type)")
}
