package eventbus_test

import (
	"testing"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/eventbus/eventbustest"
	"github.com/dddkit/dddkit/internal/testinfra"
)

func TestMemoryTransportSuite(t *testing.T) {
	t.Parallel()
	eventbustest.Run(t, func(t *testing.T) eventbustest.Harness {
		tr := eventbus.NewMemoryTransport(nil)
		t.Cleanup(func() { _ = tr.Close() })
		return eventbustest.Harness{
			Transport: tr,
			Topic:     testinfra.Name,
		}
	})
}
