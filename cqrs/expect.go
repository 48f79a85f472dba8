package cqrs

import (
	"errors"
	"fmt"
	"reflect"
)

// Expectation names a command or query type the application needs a handler
// for, and optionally the result type that handler must return. Make one with
// [Command], [CommandReturning], [Query] or [QueryReturning] and pass it to
// [Bus.Expect].
type Expectation struct {
	kind   Kind
	typ    reflect.Type
	name   string
	result reflect.Type // nil: any result type
}

// Command expects a handler for command type C, with any result type.
func Command[C any]() Expectation {
	return expectation[C](KindCommand, nil)
}

// CommandReturning expects a handler for command type C that returns R.
func CommandReturning[C, R any]() Expectation {
	return expectation[C](KindCommand, reflect.TypeFor[R]())
}

// Query expects a handler for query type Q, with any result type.
func Query[Q any]() Expectation {
	return expectation[Q](KindQuery, nil)
}

// QueryReturning expects a handler for query type Q that returns R.
func QueryReturning[Q, R any]() Expectation {
	return expectation[Q](KindQuery, reflect.TypeFor[R]())
}

func expectation[T any](kind Kind, result reflect.Type) Expectation {
	t := reflect.TypeFor[T]()
	return Expectation{kind: kind, typ: t, name: nameOf(t, kind), result: result}
}

// String describes the expectation, as in "command user.register
// (app.RegisterUser)" or "query app.GetUser returning app.UserView".
func (e Expectation) String() string {
	if e.typ == nil {
		return "cqrs.Expectation{}"
	}
	s := e.kind.String() + " " + label(e.name, e.typ)
	if e.result != nil {
		s += " returning " + e.result.String()
	}
	return s
}

// Expect records commands and queries the application needs handlers for;
// [Bus.Validate] checks them. Call it at start-up, typically next to the
// registrations, with one entry for every command and query the
// application's ports (HTTP handlers, consumers, jobs) dispatch:
//
//	bus.Expect(
//		cqrs.CommandReturning[RegisterUser, UserID](),
//		cqrs.Command[VerifyEmail](),
//		cqrs.Query[GetUser](),
//	)
//
// An expectation with a result type also makes a later [HandleCommand] or
// [HandleQuery] for that type fail if its result type differs.
func (b *Bus) Expect(expectations ...Expectation) {
	b.expectMu.Lock()
	defer b.expectMu.Unlock()
	b.expected = append(b.expected, expectations...)
}

// Validate checks every [Expectation] given to [Bus.Expect]. It returns nil
// if each has a handler with the expected result type, and otherwise one
// error that joins an error per problem, in the order expected: each missing
// handler wraps [ErrNoHandler] and names the type, each wrong result type
// wraps [ErrResultType]. Call it once all handlers are registered, before
// serving, so that a forgotten registration stops the application at
// start-up rather than failing its first request.
func (b *Bus) Validate() error {
	if b == nil {
		return errNilBus
	}
	b.expectMu.Lock()
	expected := append([]Expectation(nil), b.expected...)
	b.expectMu.Unlock()

	var errs []error
	for _, x := range expected {
		r := b.registry(x.kind)
		if r == nil {
			errs = append(errs, fmt.Errorf("cqrs: invalid expectation %v (use cqrs.Command or cqrs.Query)", x))
			continue
		}
		e, ok := r.lookup(x.typ)
		if !ok {
			errs = append(errs, r.noHandler(x.typ, nil))
			continue
		}
		if _, result := e.describe(); x.result != nil && result != x.result {
			errs = append(errs, resultMismatch(x, result))
		}
	}
	return errors.Join(errs...)
}

// checkExpectedResult is called by register: a handler returning another
// result type than an expectation declared is refused.
func (b *Bus) checkExpectedResult(kind Kind, t reflect.Type, result reflect.Type) error {
	b.expectMu.Lock()
	defer b.expectMu.Unlock()
	for _, x := range b.expected {
		if x.kind == kind && x.typ == t && x.result != nil && x.result != result {
			return resultMismatch(x, result)
		}
	}
	return nil
}

func resultMismatch(x Expectation, got reflect.Type) error {
	return fmt.Errorf("%w for %s %s: the handler returns %s, expected %s",
		ErrResultType, x.kind, label(x.name, x.typ), got, x.result)
}

func (b *Bus) registry(kind Kind) *registry {
	switch kind {
	case KindCommand:
		return &b.commands
	case KindQuery:
		return &b.queries
	default:
		return nil
	}
}
