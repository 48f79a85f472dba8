package outbox_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/retry"
)

func TestMemoryRelayThroughGoChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := outbox.NewMemory()
	// Only with BlockPublishUntilSubscriberAck does GoChannel keep order.
	gc := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	t.Cleanup(func() { _ = gc.Close() })
	sub, err := gc.Subscribe(ctx, "cart.events")
	require.NoError(t, err)
	relay, err := outbox.NewMemoryRelay(m, gc, &outbox.RelayConfig{BatchSize: 7})
	require.NoError(t, err)
	runRelay(t, relay.Run)

	events := history(10, 10)
	for chunk := range chunks(events, 3) {
		require.NoError(t, m.Append(ctx, chunk...))
	}
	check := newOrderCheck()
	for check.total < len(events) {
		select {
		case msg := <-sub:
			check.addMessage(t, msg)
			msg.Ack()
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d of %d", check.total, len(events))
		}
	}
	check.requireComplete(t, 10, 10)
	testinfra.Eventually(t, 5*time.Second, func() bool { return m.Published() == 100 }, "marked published")
	require.Empty(t, m.Pending())
}

func chunks(events []aggregate.Envelope, n int) func(func([]aggregate.Envelope) bool) {
	return func(yield func([]aggregate.Envelope) bool) {
		for i := 0; i < len(events); i += n {
			if !yield(events[i:min(i+n, len(events))]) {
				return
			}
		}
	}
}

func TestMemoryPoisonAndRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := outbox.NewMemory()
	rec := &recorder{}
	rec.setReject(rejectAggregate("a1"))
	relay, err := outbox.NewMemoryRelay(m, rec, &outbox.RelayConfig{Retry: retry.Policy{MaxAttempts: 2, BaseDelay: time.Nanosecond}})
	require.NoError(t, err)
	require.NoError(t, m.Append(ctx, history(4, 3)...))

	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 9, n)
	st := m.Stats()
	require.Equal(t, outbox.Stats{Pending: 3, Retrying: 1, OldestPending: st.OldestPending}, st)
	n, err = relay.Flush(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Len(t, m.Failed(), 1)
	require.Len(t, m.Pending(), 2, "a1 v2 and v3 wait behind the failed v1")
	require.Equal(t, itemAdded{SKU: "a1", N: 2}, m.Pending()[0].Payload)

	rec.setReject(nil)
	require.Equal(t, 1, m.RetryFailed())
	n, err = relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 3, n)
	check := newOrderCheck()
	for _, msg := range rec.messages() {
		check.addMessage(t, msg)
	}
	check.requireComplete(t, 4, 3)
	require.Equal(t, outbox.Stats{}, m.Stats())
}

func TestMemoryOutageIsRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := outbox.NewMemory()
	rec := &recorder{}
	rec.setReject(func(*message.Message) error { return errDown })
	relay, err := outbox.NewMemoryRelay(m, rec, &outbox.RelayConfig{Retry: retry.Policy{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}})
	require.NoError(t, err)
	require.NoError(t, m.Append(ctx, history(5, 2)...))
	_, err = relay.Flush(ctx)
	require.ErrorContains(t, err, "several aggregates in a row")
	require.Equal(t, int64(3), m.Stats().Retrying, "three aggregates tried before giving up")
	rec.setReject(nil)
	time.Sleep(5 * time.Millisecond)
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 10, n)
}

func TestMemoryAppendValidates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := outbox.NewMemory()
	e := envelope("x", 1)
	require.NoError(t, m.Append(ctx, e))
	require.ErrorIs(t, m.Append(ctx, e), outbox.ErrInvalidEvent, "duplicate ID")
	f := envelope("x", 2)
	require.ErrorIs(t, m.Append(ctx, f, f), outbox.ErrInvalidEvent, "duplicate inside one call")
	bad := envelope("x", 2)
	bad.Payload = nil
	require.ErrorIs(t, m.Append(ctx, envelope("y", 1), bad), outbox.ErrInvalidEvent)
	require.Len(t, m.Pending(), 1, "all or nothing")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, m.Append(cctx, envelope("z", 1)), context.Canceled)
}

// Two relays on one Memory take turns batch by batch: order is kept.
func TestMemoryRelaysTakeTurns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := outbox.NewMemory()
	rec := &recorder{}
	for range 2 {
		relay, err := outbox.NewMemoryRelay(m, rec, &outbox.RelayConfig{BatchSize: 5})
		require.NoError(t, err)
		runRelay(t, relay.Run)
	}
	events := history(20, 10)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w * 5; i < len(events); i += 4 * 5 {
				require.NoError(t, m.Append(ctx, events[i:min(i+5, len(events))]...))
			}
		})
	}
	wg.Wait()
	testinfra.Eventually(t, 5*time.Second, func() bool { return rec.len() == len(events) }, "all published")
	require.Empty(t, m.Pending())
	check := newOrderCheck() // each aggregate is written by one writer, in order
	for _, msg := range rec.messages() {
		check.addMessage(t, msg)
	}
	check.requireComplete(t, 20, 10)
}

// With events of one aggregate spread over two topics, a failure in the
// first topic holds back the aggregate's later events in the second.
func TestMemoryFailureHoldsAggregateAcrossTopics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := outbox.NewMemory()
	rec := &recorder{}
	rec.setReject(func(msg *message.Message) error {
		if msg.Metadata.Get(outbox.HeaderAggregateID) == "a0" && msg.Metadata.Get(outbox.HeaderAggregateVersion) == "1" {
			return errDown
		}
		return nil
	})
	relay, err := outbox.NewMemoryRelay(m, rec, &outbox.RelayConfig{
		Topic: func(env aggregate.Envelope) string { return "topic-" + strconv.FormatInt(env.Version%2, 10) },
	})
	require.NoError(t, err)
	require.NoError(t, m.Append(ctx, history(2, 4)...))
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 4, n, "a1 v1..v4 published, a0 held behind its v1")
	for _, msg := range rec.messages() {
		require.Equal(t, "a1", msg.Metadata.Get(outbox.HeaderAggregateID))
	}
	require.Len(t, m.Pending(), 4)
}
