package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/uuidv7"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/retry"
)

// Memory passes the suite every Source passes.
func TestMemorySuite(t *testing.T) {
	t.Parallel()
	outboxtest.Run(t, func(t *testing.T) *outboxtest.Harness {
		reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test"})
		m, err := outbox.NewMemory(reg)
		require.NoError(t, err)
		return &outboxtest.Harness{
			Source:    m,
			Registry:  reg,
			Write:     m.Append,
			Scheduler: m,
			Retry:     func(context.Context) (int, error) { return m.RetryFailed(), nil },
		}
	})
}

type itemAdded struct {
	SKU string `json:"sku"`
	N   int    `json:"n"`
}

func (itemAdded) EventName() string { return "cart.item_added" }

// envelope builds version v of cart agg.
func envelope(agg string, v int64) aggregate.Envelope {
	return aggregate.Envelope{
		ID:            uuidv7.New().String(),
		Name:          itemAdded{}.EventName(),
		AggregateType: "cart",
		AggregateID:   agg,
		Version:       v,
		Payload:       itemAdded{SKU: agg, N: int(v)},
	}
}

func newMemory(t testing.TB) (*outbox.Memory, *eventbus.Registry) {
	t.Helper()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test"})
	require.NoError(t, eventbus.Register[itemAdded](reg, eventbus.AggregateType("cart")))
	m, err := outbox.NewMemory(reg)
	require.NoError(t, err)
	return m, reg
}

func TestNewMemoryNeedsARegistry(t *testing.T) {
	t.Parallel()
	_, err := outbox.NewMemory(nil)
	require.ErrorContains(t, err, "nil Registry")
}

// Only with BlockPublishUntilSubscriberAck does GoChannel keep order; with
// it, the embedded mode's path (Memory → Relay → GoChannel) keeps each
// aggregate's order.
func TestMemoryRelayThroughGoChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, reg := newMemory(t)
	gc := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = gc.Close() })
	sub, err := gc.Subscribe(ctx, reg.Topic("cart"))
	require.NoError(t, err)
	relay, err := outbox.NewRelay(m, gc, reg, &outbox.RelayConfig{BatchSize: 7})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})

	var events []aggregate.Envelope
	for v := int64(1); v <= 10; v++ {
		for _, agg := range []string{"a", "b", "c", "d"} {
			events = append(events, envelope(agg, v))
		}
	}
	for i := 0; i < len(events); i += 3 {
		require.NoError(t, m.Append(ctx, events[i:min(i+3, len(events))]...))
	}
	check := outboxtest.NewOrderCheck()
	for check.Total() < len(events) {
		select {
		case msg := <-sub:
			require.NoError(t, check.AddMessage(msg))
			msg.Ack()
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d of %d", check.Total(), len(events))
		}
	}
	require.NoError(t, check.Complete(4, 10))
	require.Eventually(t, func() bool { return m.Published() == int64(len(events)) }, 10*time.Second, 10*time.Millisecond)
	require.Empty(t, m.Pending())
}

func TestMemoryAppend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := newMemory(t)
	e := envelope("x", 1)
	e.Metadata = aggregate.Metadata{Values: map[string]string{"tenant": "acme"}}
	require.NoError(t, m.Append(ctx, e))
	e.Metadata.Values["tenant"] = "changed after the write"

	pending := m.Pending()
	require.Len(t, pending, 1)
	require.Equal(t, itemAdded{SKU: "x", N: 1}, pending[0].Payload, "Pending keeps the payload")
	require.Equal(t, "acme", pending[0].Metadata.Values["tenant"], "the outbox keeps its own copy of the metadata")
	require.False(t, pending[0].OccurredAt.IsZero(), "a zero OccurredAt is stamped at write")

	bad := envelope("y", 1)
	bad.AggregateType = ""
	require.ErrorIs(t, m.Append(ctx, envelope("y", 1), bad), outbox.ErrInvalidEvent)
	require.Len(t, m.Pending(), 1, "all or nothing")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, m.Append(cctx, envelope("z", 1)), context.Canceled)
	require.Len(t, m.Pending(), 1)
}

// An event ID is refused while it is in the outbox and accepted again
// once it was published (Memory drops published events).
func TestMemoryDuplicateIDs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, reg := newMemory(t)
	e := envelope("x", 1)
	require.NoError(t, m.Append(ctx, e))
	require.ErrorIs(t, m.Append(ctx, e), outbox.ErrInvalidEvent)
	relay, err := outbox.NewRelay(m, &outboxtest.Recorder{}, reg, nil)
	require.NoError(t, err)
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, int64(1), m.Published())
	require.NoError(t, m.Append(ctx, e))
}

// Failed, Pending and RetryFailed, the in-memory operator's view.
func TestMemoryFailedAndRetryFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, reg := newMemory(t)
	rec := &outboxtest.Recorder{}
	rec.Refuse(func(_ string, msg *message.Message) error {
		if msg.Metadata.Get(eventbus.HeaderAggregateID) == "a" {
			return outbox.ErrInvalidEvent // any error
		}
		return nil
	})
	relay, err := outbox.NewRelay(m, rec, reg, &outbox.RelayConfig{Retry: retry.Policy{MaxAttempts: 1}})
	require.NoError(t, err)
	require.NoError(t, m.Append(ctx, envelope("a", 1), envelope("a", 2), envelope("b", 1)))
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	failed := m.Failed()
	require.Len(t, failed, 1)
	require.Equal(t, "a", failed[0].AggregateID)
	require.Equal(t, int64(1), failed[0].Version)
	pending := m.Pending()
	require.Len(t, pending, 1)
	require.Equal(t, int64(2), pending[0].Version, "a v2 waits behind the failed v1")

	rec.Refuse(nil)
	require.Equal(t, 1, m.RetryFailed())
	require.Zero(t, m.RetryFailed(), "nothing failed any more")
	n, err = relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Empty(t, m.Failed())
	require.Empty(t, m.Pending())
	require.Equal(t, int64(3), m.Published())
}
