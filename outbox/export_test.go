package outbox

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/metric"

	"github.com/dddkit/dddkit/eventbus"
)

// NewRelayOn is NewRelay with its instruments on meter; nil means none.
func NewRelayOn(src Source, pub message.Publisher, reg *eventbus.Registry, cfg *RelayConfig, meter metric.Meter) (*Relay, error) {
	return newRelay(src, pub, reg, cfg, meter)
}
