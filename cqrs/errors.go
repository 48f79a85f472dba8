package cqrs

import (
	"errors"
	"fmt"
)

var (
	// ErrNoHandler is wrapped by the error of a dispatch of a command or
	// query type without a handler, and by each error [Bus.Validate]
	// reports for an expected type without one. The message names the type.
	ErrNoHandler = errors.New("cqrs: no handler")

	// ErrDuplicateHandler is wrapped by the error of [HandleCommand] or
	// [HandleQuery] when the type already has a handler, or another type of
	// the same kind already uses its name.
	ErrDuplicateHandler = errors.New("cqrs: duplicate handler")

	// ErrResultType is wrapped by the error of a dispatch whose result type
	// is not the one the handler returns, and of a registration or a
	// [Bus.Validate] whose handler returns another result type than
	// [Bus.Expect] declared.
	ErrResultType = errors.New("cqrs: result type mismatch")

	// ErrValidation is what every [*ValidationError] is: errors.Is(err,
	// ErrValidation) tells a caller that the command or query was rejected
	// by its Validate method, before its handler ran.
	ErrValidation = errors.New("cqrs: validation failed")

	// ErrPanic is what every [*PanicError] is: errors.Is(err, ErrPanic)
	// tells a caller that the handler (or a middleware inside [Recover])
	// panicked.
	ErrPanic = errors.New("cqrs: handler panicked")
)

// ValidationError is returned by the [Validation] middleware when a command
// or query's Validate method fails. errors.Is(err, [ErrValidation]) holds,
// and errors.As reaches the error Validate returned through Unwrap.
type ValidationError struct {
	Kind Kind
	Name string
	Err  error // what Validate returned
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("cqrs: invalid %s %s: %v", e.Kind, e.Name, e.Err)
}

// Is reports whether target is [ErrValidation].
func (e *ValidationError) Is(target error) bool { return target == ErrValidation }

// Unwrap returns the error Validate returned.
func (e *ValidationError) Unwrap() error { return e.Err }

// Refusal returns true: bad input is a refusal, not a failure (see
// [IsRefusal]).
func (e *ValidationError) Refusal() bool { return true }

// PanicError is returned by the [Recover] middleware when a handler panics.
// errors.Is(err, [ErrPanic]) holds; if the panic value is an error, Unwrap
// returns it, so errors.Is and errors.As reach it too.
type PanicError struct {
	Kind  Kind
	Name  string
	Value any    // the value passed to panic
	Stack string // the panicking goroutine's stack, from runtime/debug.Stack
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("cqrs: %s %s panicked: %v", e.Kind, e.Name, e.Value)
}

// Is reports whether target is [ErrPanic].
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value if it is an error, and nil otherwise.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
