package valueobject_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/valueobject"
)

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *valueobject.Error
		want string
	}{
		{&valueobject.Error{Field: "email", Reason: `must contain exactly one "@"`, Err: valueobject.ErrInvalid}, `valueobject: email: must contain exactly one "@"`},
		{&valueobject.Error{Reason: "must not be empty", Err: valueobject.ErrEmpty}, "valueobject: must not be empty"},
		{&valueobject.Error{Field: "x", Reason: "bad"}, "valueobject: x: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.err.Error())
			require.Equal(t, tt.err.Err, tt.err.Unwrap())
		})
	}
}

func TestWithField(t *testing.T) {
	t.Parallel()
	_, orig := valueobject.NewPassword("short")
	require.Error(t, orig)

	tests := []struct {
		name       string
		in         error
		wantMsg    string
		wantIs     []error
		wantReason string
	}{
		{"direct *Error", orig, "valueobject: newPassword: must be at least 8 characters long", []error{valueobject.ErrTooShort}, "must be at least 8 characters long"},
		{"wrapped *Error", fmt.Errorf("register: %w", orig), "valueobject: newPassword: must be at least 8 characters long", []error{valueobject.ErrTooShort, orig}, "must be at least 8 characters long"},
		{"other error", io.ErrUnexpectedEOF, "valueobject: newPassword: unexpected EOF", []error{io.ErrUnexpectedEOF}, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := valueobject.WithField(tt.in, "newPassword")
			require.EqualError(t, err, tt.wantMsg)
			for _, target := range tt.wantIs {
				require.ErrorIs(t, err, target)
			}
			var ve *valueobject.Error
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "newPassword", ve.Field)
			require.Equal(t, tt.wantReason, ve.Reason)
		})
	}

	require.NoError(t, valueobject.WithField(nil, "x"))
	var ve *valueobject.Error
	require.ErrorAs(t, orig, &ve)
	require.Equal(t, "password", ve.Field, "the original is not modified")
}

func TestFieldErrors(t *testing.T) {
	t.Parallel()
	_, emailErr := valueobject.ParseEmail("nope")
	_, idErr := valueobject.ParseID("")
	_, pwErr := valueobject.NewPassword("password")

	joined := errors.Join(
		emailErr,
		fmt.Errorf("owner: %w", valueobject.WithField(idErr, "ownerId")),
		errors.New("not a field error"),
		fmt.Errorf("two: %w and %w", pwErr, io.EOF),
	)
	got := valueobject.FieldErrors(fmt.Errorf("register user: %w", joined))
	require.Len(t, got, 3)
	require.Equal(t, "email", got[0].Field)
	require.Equal(t, `must contain exactly one "@"`, got[0].Reason)
	require.Equal(t, "ownerId", got[1].Field)
	require.Equal(t, "must not be empty", got[1].Reason)
	require.Equal(t, "password", got[2].Field)
	require.Equal(t, "is too common and easy to guess", got[2].Reason)

	require.Nil(t, valueobject.FieldErrors(nil))
	require.Nil(t, valueobject.FieldErrors(io.EOF))
	require.Nil(t, valueobject.FieldErrors(valueobject.ErrPasswordMismatch))
}

func TestErrorIsARefusal(t *testing.T) {
	t.Parallel()
	_, err := valueobject.ParseEmail("")
	var r interface{ Refusal() bool }
	require.ErrorAs(t, fmt.Errorf("register: %w", err), &r, "found through wrapping")
	require.True(t, r.Refusal())
}
