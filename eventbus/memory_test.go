package eventbus_test

import (
	"testing"

	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/eventbus/eventbustest"
)

func TestMemoryTransportSuite(t *testing.T) {
	t.Parallel()
	eventbustest.Run(t, func(t *testing.T) eventbustest.Harness {
		tr := eventbus.NewMemoryTransport(nil)
		t.Cleanup(func() { _ = tr.Close() })
		return eventbustest.Harness{
			Transport: tr,
			Topic:     dddkittest.UniqueName,
		}
	})
}
