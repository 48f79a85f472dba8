package eventbus

import (
	"errors"
	"fmt"
)

var (
	// ErrDuplicateEvent is returned by [Register] for a second type with
	// an event name that is already registered.
	ErrDuplicateEvent = errors.New("eventbus: event name already registered")

	// ErrNotRegistered reports an event type that [Register] has not seen:
	// [Handle] needs its name and topic, and [Registry.EncodePayload]
	// refuses to write it.
	ErrNotRegistered = errors.New("eventbus: event type not registered")

	// ErrLossyEvent is returned by [Register] for an event type that
	// would not arrive as it was sent: a field encoding/json drops (an
	// unexported one, a value object without exported fields), cannot
	// encode or cannot decode. The error names each such field.
	ErrLossyEvent = errors.New("eventbus: event type would lose data in encoding")

	// ErrUnknownEvent reports a message whose event name the [Registry]
	// does not know. What a [Router] does with it is
	// [RouterConfig.UnknownEvents].
	ErrUnknownEvent = errors.New("eventbus: unknown event")

	// ErrDecode is wrapped by every error that says a message cannot be
	// turned into an event: missing or malformed headers, JSON that does
	// not fit the Go type, an unknown schema version, a failing upcaster.
	// Such an error is [permanent]: retrying cannot fix it, so a Router
	// dead-letters the message at once.
	ErrDecode = errors.New("eventbus: cannot decode message")

	// ErrDuplicateHandler is returned by [Handle] when the handler name is
	// already used for the same event name.
	ErrDuplicateHandler = errors.New("eventbus: duplicate handler")

	// ErrRouterRunning is returned when a handler is added to a [Router]
	// that has already started.
	ErrRouterRunning = errors.New("eventbus: router already running")

	// ErrPermanent marks an error that no retry can fix; see [Permanent].
	ErrPermanent = errors.New("eventbus: permanent failure")

	// ErrUnavailable marks a failure of infrastructure the handler depends
	// on, such as a database that cannot be reached: it says nothing about
	// the event. A [Router] retries such an error without counting it
	// against [RouterConfig.Retry]'s MaxAttempts and never dead-letters it, so an
	// outage makes the partition wait instead of sending every event that
	// arrives meanwhile to the dead-letter topic. An [Inbox] wraps a
	// failure to begin its transaction with it; a handler can do the same
	// with fmt.Errorf("...: %w", eventbus.ErrUnavailable).
	ErrUnavailable = errors.New("eventbus: dependency unavailable")

	// ErrPanic is matched by a [*PanicError].
	ErrPanic = errors.New("eventbus: handler panicked")

	// ErrSkip is returned by the command function of a process.Command
	// to dispatch nothing and acknowledge the event.
	ErrSkip = errors.New("eventbus: skip")
)

// Permanent marks err as one that retrying cannot fix (a business rule
// that will never accept this event, a payload the handler rejects). A
// [Router] sends a message whose handler returns such an error to the
// dead-letter topic at once instead of retrying it.
// errors.Is(Permanent(err), err) and errors.Is(Permanent(err), ErrPermanent)
// both hold. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{e.err, ErrPermanent} }

// permanent reports whether err is marked [Permanent] or is a decode
// error.
func permanent(err error) bool {
	return errors.Is(err, ErrPermanent) || errors.Is(err, ErrDecode)
}

// DecodeError says why a message or a stored payload could not be
// decoded. errors.Is(err, ErrDecode) holds for it.
type DecodeError struct {
	EventID   string // from the message; may be empty
	EventName string // from the message; may be empty
	Err       error  // the cause
}

func (e *DecodeError) Error() string {
	if e.EventID == "" {
		return fmt.Sprintf("eventbus: cannot decode event %q: %v", e.EventName, e.Err)
	}
	return fmt.Sprintf("eventbus: cannot decode event %q (id %q): %v", e.EventName, e.EventID, e.Err)
}

// Unwrap returns the cause and [ErrDecode].
func (e *DecodeError) Unwrap() []error { return []error{e.Err, ErrDecode} }

// PanicError is what a handler's panic becomes. It is retried like any
// other error and ends in the dead-letter topic if the handler keeps
// panicking. Its fields are those of cqrs.PanicError, whose Kind and Name
// (command or query) have no counterpart here.
type PanicError struct {
	Value any    // what was passed to panic
	Stack string // the goroutine's stack at the panic, from runtime/debug.Stack
}

func (e *PanicError) Error() string { return fmt.Sprintf("eventbus: handler panicked: %v", e.Value) }

// Is makes errors.Is(err, ErrPanic) true.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
