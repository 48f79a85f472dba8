package eventbus_test

import (
	"testing"

	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/eventbus/eventbustest"
)

func TestMemoryDeadLettersSuite(t *testing.T) {
	t.Parallel()
	store := eventbus.NewMemoryDeadLetters()
	eventbustest.RunDeadLetters(t, func(*testing.T) eventbus.DeadLetters { return store })
}

func TestMemoryParkingSuite(t *testing.T) {
	t.Parallel()
	eventbustest.RunParking(t, func(t *testing.T) eventbustest.ParkingHarness {
		tr := eventbus.NewMemoryTransport(nil)
		t.Cleanup(func() { _ = tr.Close() })
		return eventbustest.ParkingHarness{
			Transport:   tr,
			Topic:       dddkittest.UniqueName,
			DeadLetters: eventbus.NewMemoryDeadLetters(),
		}
	})
}
