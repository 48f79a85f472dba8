package outbox_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/retry"
)

func TestRelayConfigValidate(t *testing.T) {
	t.Parallel()
	err := (&outbox.RelayConfig{BatchSize: -1, MaxInFlight: -1, PollInterval: -1, ShutdownTimeout: -1, Retry: retry.Policy{MaxAttempts: -2}}).Validate()
	require.ErrorContains(t, err, "outbox: RelayConfig.MaxInFlight is -1, must be >= 0")
	require.ErrorContains(t, err, "outbox: RelayConfig.BatchSize is -1, must be >= 0")
	require.ErrorContains(t, err, "outbox: RelayConfig.PollInterval is -1ns, must be >= 0")
	require.ErrorContains(t, err, "outbox: RelayConfig.ShutdownTimeout is -1ns, must be >= 0")
	require.ErrorContains(t, err, "outbox: RelayConfig.Retry: retry: Policy.MaxAttempts is -2, must be >= 0")
	require.ErrorContains(t, (&outbox.RelayConfig{BatchSize: 10001}).Validate(), "above the limit of 10000")
	require.ErrorContains(t, (&outbox.RelayConfig{MaxInFlight: 65}).Validate(), "MaxInFlight 65 is above the limit of 64")
	require.NoError(t, (*outbox.RelayConfig)(nil).Validate())
	require.NoError(t, (&outbox.RelayConfig{}).Validate())
}

func TestNewRelayReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := outbox.NewRelay(nil, nil, nil, &outbox.RelayConfig{BatchSize: 20000})
	require.ErrorContains(t, err, "nil Source")
	require.ErrorContains(t, err, "nil publisher")
	require.ErrorContains(t, err, "nil Registry")
	require.ErrorContains(t, err, "BatchSize")

	m, reg := newMemory(t)
	relay, err := outbox.NewRelay(m, &outboxtest.Recorder{}, reg, nil)
	require.NoError(t, err)
	require.False(t, relay.IsLeader())

	// A producer needs the CloudEvents source of its service.
	_, err = outbox.NewRelay(m, &outboxtest.Recorder{}, eventbus.NewRegistry(nil), nil)
	require.ErrorIs(t, err, eventbus.ErrInvalidSource)
	require.ErrorContains(t, err, "outbox: NewRelay: eventbus: invalid RegistryConfig.Source: it is empty")
	require.ErrorContains(t, err, `"urn:service:auth"`)
	_, err = outbox.NewRelay(m, &outboxtest.Recorder{}, eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "my service"}), nil)
	require.ErrorIs(t, err, eventbus.ErrInvalidSource)
}

// callRecorder is a publisher that records each call's messages.
type callRecorder struct {
	mu    sync.Mutex
	calls [][]*message.Message
}

func (r *callRecorder) Publish(_ string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, msgs)
	return nil
}

func (*callRecorder) Close() error { return nil }

// A batch whose aggregates have several events each is published in one
// call per event of an aggregate; after such a full batch the relay reads
// BatchSize times the events per aggregate, so that its calls carry about
// BatchSize events again.
func TestRelayReadsMoreWhenAggregatesHaveSeveralEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, reg := newMemory(t)
	var events []aggregate.Envelope
	for a := range 40 {
		for v := int64(1); v <= 5; v++ { // each aggregate's 5 events together, as a command writes them
			events = append(events, envelope(fmt.Sprintf("cart-%02d", a), v))
		}
	}
	require.NoError(t, m.Append(ctx, events...))
	pub := &callRecorder{}
	relay, err := outbox.NewRelay(m, pub, reg, &outbox.RelayConfig{BatchSize: 10, MaxInFlight: 1})
	require.NoError(t, err)
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, len(events), n)

	var sizes []int
	check := outboxtest.NewOrderCheck()
	for _, call := range pub.calls {
		sizes = append(sizes, len(call))
		for _, msg := range call {
			require.NoError(t, check.AddMessage(msg))
		}
	}
	require.NoError(t, check.Complete(40, 5))
	want := []int{2, 2, 2, 2, 2} // 10 events of 2 carts: 5 calls
	for range 3 {
		want = append(want, 10, 10, 10, 10, 10) // then 50 events of 10 carts at a time
	}
	want = append(want, 8, 8, 8, 8, 8) // the last 40
	require.Equal(t, want, sizes)
}

// fetchRecorder is a Memory that records each Fetch: the limit asked
// for, the events returned, and whether batches were in flight.
type fetchRecorder struct {
	*outbox.Memory
	fetches []string
}

func (f *fetchRecorder) Fetch(ctx context.Context, limit int, inFlight outbox.SeqRange) ([]outbox.Pending, error) {
	items, err := f.Memory.Fetch(ctx, limit, inFlight)
	f.fetches = append(f.fetches, fmt.Sprintf("%d:%d beside=%t", limit, len(items), !inFlight.Empty()))
	return items, err
}

// A fetch beside the batches in flight that reads nothing (here: every
// pending event is held back by them) does not undo the larger batch
// that a full batch of several events per aggregate asked for: the next
// fetch reads it. Before, it fell back to BatchSize, and a relay that
// cannot read beside its batches (a PostgreSQL relay leading a few of the
// shards) never read more than BatchSize.
func TestRelayKeepsTheBatchSizeAcrossAnEmptyFetchBeside(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, reg := newMemory(t)
	var events []aggregate.Envelope
	for v := int64(1); v <= 20; v++ { // two carts' events interleaved
		events = append(events, envelope("cart-a", v), envelope("cart-b", v))
	}
	require.NoError(t, m.Append(ctx, events...))
	src := &fetchRecorder{Memory: m}
	pub := &callRecorder{}
	relay, err := outbox.NewRelay(src, pub, reg, &outbox.RelayConfig{BatchSize: 10, MaxInFlight: 2})
	require.NoError(t, err)
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, len(events), n)
	require.Equal(t, []string{
		"10:10 beside=false", // 5 events of each cart: full, so the next reads 10 × 5
		"50:0 beside=true",   // the rest is held back by the batch in flight
		"50:30 beside=false", // once it is recorded: the rest, in one batch
	}, src.fetches)
	check := outboxtest.NewOrderCheck()
	for _, call := range pub.calls {
		for _, msg := range call {
			require.NoError(t, check.AddMessage(msg))
		}
	}
	require.NoError(t, check.Complete(2, 20))
}

// eventRecorder is a publisher with wire.EventPublisher, as the kafka
// package's is: it records each PublishEvents call; Publish fails.
type eventRecorder struct {
	t      *testing.T
	mu     sync.Mutex
	topics []string
	events []wire.Event
}

func (r *eventRecorder) PublishEvents(_ context.Context, topic, source string, evs []wire.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Equal(r.t, "urn:dddkit:test", source)
	for range evs {
		r.topics = append(r.topics, topic)
	}
	r.events = append(r.events, evs...)
	return nil
}

func (r *eventRecorder) Publish(string, ...*message.Message) error {
	r.t.Error("Publish called on a publisher with PublishEvents")
	return nil
}

func (*eventRecorder) Close() error { return nil }

// A publisher with PublishEvents gets the events the relay would have
// built its messages from: wire.ToMessage of each is the message a plain
// publisher gets.
func TestRelayHandsEventsToAnEventPublisher(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	events := make([]aggregate.Envelope, 0, 6)
	for a := range 3 {
		for v := int64(1); v <= 2; v++ {
			env := envelope(fmt.Sprintf("cart-%d", a), v)
			env.Metadata = aggregate.Metadata{CorrelationID: "req-1", Values: map[string]string{"tenant": "acme"}}
			env.OccurredAt = time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
			events = append(events, env)
		}
	}
	relayTo := func(pub message.Publisher) {
		m, reg := newMemory(t)
		require.NoError(t, m.Append(ctx, events...))
		relay, err := outbox.NewRelay(m, pub, reg, nil)
		require.NoError(t, err)
		n, err := relay.Flush(ctx)
		require.NoError(t, err)
		require.Equal(t, len(events), n)
	}
	plain, direct := &outboxtest.Recorder{}, &eventRecorder{t: t}
	relayTo(plain)
	relayTo(direct)

	msgs := plain.Messages()
	require.Len(t, direct.events, len(msgs))
	for i, ev := range direct.events {
		require.Equal(t, "cart.events", direct.topics[i])
		got := wire.ToMessage(*ev.Envelope, "urn:dddkit:test", ev.Payload, ev.SchemaVersion)
		require.Equal(t, msgs[i].UUID, got.UUID)
		require.JSONEq(t, string(msgs[i].Payload), string(got.Payload))
		require.Equal(t, msgs[i].Metadata, got.Metadata)
	}
}
