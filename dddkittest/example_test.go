package dddkittest_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
)

// An aggregate of the example: a door that can be locked once.
type Door struct {
	aggregate.Root
	locked bool
}

type DoorLocked struct{ By string }

func (DoorLocked) EventName() string { return "door.locked" }

var ErrAlreadyLocked = errors.New("door already locked")

func NewDoor() *Door {
	d := &Door{}
	d.Init("door-1", "door", d.apply)
	return d
}

func (d *Door) apply(e aggregate.Event) error {
	if _, ok := e.(DoorLocked); ok {
		d.locked = true
		return nil
	}
	return fmt.Errorf("unknown event %T", e)
}

func (d *Door) Lock(by string) error {
	if d.locked {
		return ErrAlreadyLocked
	}
	return d.Record(DoorLocked{By: by})
}

// In a test function, t is the *testing.T; the example uses a stand-in
// that prints the failure instead.
func Example() {
	var t testing.TB = printT{}

	// Locking an open door records DoorLocked, at the clock's time.
	clock := dddkittest.NewClock(time.Time{})
	dddkittest.Aggregate(t, NewDoor).
		WithOptions(aggregate.WithClock(clock.Now)).
		When(func(d *Door) error { return d.Lock("ada") }).
		Then(DoorLocked{By: "ada"}).
		OccurredAt(dddkittest.T0)

	// Locking a locked door fails with ErrAlreadyLocked and records nothing.
	dddkittest.Aggregate(t, NewDoor).
		Given(DoorLocked{By: "ada"}).
		When(func(d *Door) error { return d.Lock("bob") }).
		ThenError(ErrAlreadyLocked)

	// A wrong expectation fails the test with the two events side by side.
	r := dddkittest.Aggregate(t, NewDoor).
		When(func(d *Door) error { return d.Lock("ada") })
	fmt.Println("recorded:", r.Events())
	r.ThenError(ErrAlreadyLocked)
	// Output:
	// recorded: [{ada}]
	// FAIL: dddkittest: then error: want door already locked, got no error (recorded door.locked (dddkittest_test.DoorLocked))
}

type printT struct{ testing.TB }

func (printT) Helper()      {}
func (printT) Name() string { return "example" }
func (printT) Errorf(format string, args ...any) {
	fmt.Printf("FAIL: "+format+"\n", args...)
}
func (printT) Fatalf(format string, args ...any) {
	fmt.Printf("FATAL: "+format+"\n", args...)
}
