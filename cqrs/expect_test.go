package cqrs_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cqrs"
)

func TestValidateNamesEveryMissingHandler(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	bus.Expect(
		cqrs.Command[RegisterUser](),
		cqrs.Command[VerifyEmail](),
		cqrs.QueryReturning[GetUser, UserView](),
	)
	bus.Expect(cqrs.Query[ListUsers]())

	err := bus.Validate()
	require.ErrorIs(t, err, cqrs.ErrNoHandler)
	require.EqualError(t, err, "cqrs: no handler for command cqrs_test.VerifyEmail\n"+
		"cqrs: no handler for query user.get (cqrs_test.GetUser)\n"+
		"cqrs: no handler for query cqrs_test.ListUsers")

	joined, ok := err.(interface{ Unwrap() []error })
	require.True(t, ok, "one error per missing handler")
	require.Len(t, joined.Unwrap(), 3)
	for _, e := range joined.Unwrap() {
		require.ErrorIs(t, e, cqrs.ErrNoHandler)
	}

	require.NoError(t, cqrs.HandleCommand(bus, func(context.Context, VerifyEmail) (struct{}, error) { return struct{}{}, nil }))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (UserView, error) { return UserView{}, nil }))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, ListUsers) ([]UserView, error) { return nil, nil }))
	require.NoError(t, bus.Validate())
}

func TestValidateWithoutExpectations(t *testing.T) {
	t.Parallel()
	require.NoError(t, newBus(t, nil).Validate())
}

func TestValidateChecksExpectedResultType(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, GetUser) (*UserView, error) { return nil, nil }))
	bus.Expect(
		cqrs.CommandReturning[RegisterUser, UserID](),
		cqrs.QueryReturning[GetUser, UserView](),
	)
	err := bus.Validate()
	require.ErrorIs(t, err, cqrs.ErrResultType)
	require.False(t, errors.Is(err, cqrs.ErrNoHandler))
	require.EqualError(t, err, "cqrs: result type mismatch for query user.get (cqrs_test.GetUser): the handler returns *cqrs_test.UserView, expected cqrs_test.UserView")
}

func TestRegisteringAgainstExpectedResultTypeFails(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	bus.Expect(cqrs.CommandReturning[RegisterUser, UserID]())

	err := cqrs.HandleCommand(bus, func(context.Context, RegisterUser) (string, error) { return "", nil })
	require.ErrorIs(t, err, cqrs.ErrResultType)
	require.EqualError(t, err, "cqrs: result type mismatch for command user.register (cqrs_test.RegisterUser): the handler returns string, expected cqrs_test.UserID")

	require.NoError(t, cqrs.HandleCommand(bus, registerUser))
	require.NoError(t, bus.Validate())
}

func TestExpectationString(t *testing.T) {
	t.Parallel()
	require.Equal(t, "command user.register (cqrs_test.RegisterUser)", cqrs.Command[RegisterUser]().String())
	require.Equal(t, "command cqrs_test.VerifyEmail returning int", cqrs.CommandReturning[VerifyEmail, int]().String())
	require.Equal(t, "query user.get (cqrs_test.GetUser)", cqrs.Query[GetUser]().String())
	require.Equal(t, "query cqrs_test.ListUsers returning []cqrs_test.UserView", cqrs.QueryReturning[ListUsers, []UserView]().String())
	require.Equal(t, "cqrs.Expectation{}", cqrs.Expectation{}.String())
}

func TestValidateRejectsZeroExpectation(t *testing.T) {
	t.Parallel()
	bus := newBus(t, nil)
	bus.Expect(cqrs.Expectation{})
	require.EqualError(t, bus.Validate(), "cqrs: invalid expectation cqrs.Expectation{} (use cqrs.Command or cqrs.Query)")
}
