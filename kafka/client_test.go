package kafka_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/postgres"
)

// A process that relays from the outbox, publishes events directly and
// dead-letters through one Client opens one producer: every record those
// three wrote carries the same producer ID (the broker gives each
// idempotent producer an ID of its own, as the second client shows).
func TestOneProducerForRelayPublisherAndDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	brokers := kafkatest.Brokers(t)
	pool := pgtest.Pool(t)
	relayTopic, pubTopic, deadLetters := kafkatest.Topic(t, 2), kafkatest.Topic(t, 2), kafkatest.Topic(t, 1)
	client := newClient(t)

	// The outbox relay, with a registry of its own that sends every event
	// to relayTopic.
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	relayReg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(string) string { return relayTopic }})
	require.NoError(t, eventbus.Register[orderPlaced](relayReg, eventbus.AggregateType("order")))
	box, err := postgres.NewOutbox(pool, relayReg, nil)
	require.NoError(t, err)
	var relayed atomic.Int64
	relay, err := outbox.NewRelay(box, client.Publisher(), relayReg, &outbox.RelayConfig{
		PollInterval: 50 * time.Millisecond,
		Logger:       testLogger(),
		Hooks:        outbox.Hooks{OnPublished: func(evs []aggregate.Envelope, _ time.Duration) { relayed.Add(int64(len(evs))) }},
	})
	require.NoError(t, err)
	outboxtest.Start(t, relay, 30*time.Second)
	require.NoError(t, box.Write(ctx, order("o-1", 1)))

	// An eventbus.Publisher, and a Router whose handler refuses every
	// event, so that it dead-letters what the publisher sent.
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(string) string { return pubTopic }})
	require.NoError(t, eventbus.Register[orderPlaced](reg, eventbus.AggregateType("order")))
	pub, err := eventbus.NewPublisher(client.Publisher(), reg)
	require.NoError(t, err)
	r, err := eventbus.NewRouter(client, reg, &eventbus.RouterConfig{Logger: testLogger(), DeadLetterTopic: deadLetters})
	require.NoError(t, err)
	require.NoError(t, eventbus.Handle(r, "refuse-"+dddkittest.UniqueSuffix(), func(context.Context, orderPlaced, aggregate.Envelope) error {
		return eventbus.Permanent(errors.New("refused"))
	}))
	dl := subscribeAll(t, client, deadLetters)
	start(t, r)
	require.NoError(t, pub.Publish(ctx, order("o-2", 2)))

	testinfra.Eventually(t, 60*time.Second, func() bool { return relayed.Load() == 1 && len(dl.all()) == 1 },
		"relayed %d of 1, dead-lettered %d of 1", relayed.Load(), len(dl.all()))

	ids := kafkatest.ProducerIDs(t, brokers, relayTopic)
	require.Len(t, ids, 1, "relay")
	require.Equal(t, ids, kafkatest.ProducerIDs(t, brokers, pubTopic), "publisher and relay share the producer")
	require.Equal(t, ids, kafkatest.ProducerIDs(t, brokers, deadLetters), "dead letters and relay share the producer")

	otherTopic := kafkatest.Topic(t, 1)
	require.NoError(t, newClient(t).Publisher().Publish(otherTopic, message.NewMessage("m-1", nil)))
	other := kafkatest.ProducerIDs(t, brokers, otherTopic)
	require.Len(t, other, 1)
	require.NotEqual(t, ids, other, "a second client is a second producer")
}
