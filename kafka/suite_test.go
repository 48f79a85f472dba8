package kafka_test

import (
	"testing"

	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/eventbus/eventbustest"
)

// The Client passes the transport suite every eventbus transport passes.
func TestTransportSuite(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	eventbustest.Run(t, func(t *testing.T) eventbustest.Harness {
		return eventbustest.Harness{
			Transport: c,
			Topic:     func(t testing.TB) string { return kafkatest.Topic(t, 3) },
		}
	})
}
