package eventbus_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

type cartOpened struct{ ID string }

func (cartOpened) EventName() string { return "shop.cart_opened" }

type cartClosed struct{ ID string }

func (cartClosed) EventName() string { return "shop.cart_closed" }

type invoiceSent struct{ ID string }

func (invoiceSent) EventName() string { return "billing.invoice_sent" }

type heartbeat struct{}

func (heartbeat) EventName() string { return "ops.heartbeat" }

func TestRegistryAndRouterTopics(t *testing.T) {
	t.Parallel()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Topic: func(a string) string { return "svc." + a }})
	require.Empty(t, reg.Topics())
	require.NoError(t, eventbus.Register[cartOpened](reg, eventbus.AggregateType("cart")))
	require.NoError(t, eventbus.Register[cartClosed](reg, eventbus.AggregateType("cart")))
	require.NoError(t, eventbus.Register[invoiceSent](reg, eventbus.AggregateType("invoice")))
	require.NoError(t, eventbus.Register[heartbeat](reg)) // no aggregate type: no topic
	require.Equal(t, []string{"svc.cart", "svc.invoice"}, reg.Topics())

	r, err := eventbus.NewRouter(eventbus.NewMemoryTransport(nil), reg, &eventbus.RouterConfig{DeadLetterTopic: "svc.dlq"})
	require.NoError(t, err)
	require.Empty(t, r.Topics())
	noop := func(context.Context, cartOpened, aggregate.Envelope) error { return nil }
	require.NoError(t, eventbus.Handle(r, "a", noop))
	require.NoError(t, eventbus.Handle(r, "b", func(context.Context, cartClosed, aggregate.Envelope) error { return nil }))
	require.NoError(t, eventbus.Handle(r, "c", noop, eventbus.FromTopic("legacy.carts"), eventbus.DeadLetterTopic("legacy.dlq")))
	require.NoError(t, eventbus.Handle(r, "d", func(context.Context, heartbeat, aggregate.Envelope) error { return nil }, eventbus.FromTopic("ops")))
	require.Equal(t, []string{"legacy.carts", "legacy.dlq", "ops", "svc.cart", "svc.dlq"}, r.Topics())
}
