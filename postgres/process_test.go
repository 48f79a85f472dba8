package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/process"
	"github.com/dddkit/dddkit/process/processtest"
)

var discardLogger = slog.New(slog.DiscardHandler)

// The PostgreSQL process store passes the suite every process.Store
// passes.
func TestProcessStoreSuite(t *testing.T) {
	t.Parallel()
	processtest.Run(t, func(t *testing.T) process.Store {
		pool, _ := pgtest.Schema(t)
		require.NoError(t, postgres.Migrate(context.Background(), pool, nil))
		s, err := postgres.NewProcessStore(pool, nil)
		require.NoError(t, err)
		return s
	})
}

// The payment-timeout scenario of a process manager on real PostgreSQL
// and Kafka: the orders and the payments on two topics, the instances in
// the PostgreSQL store, the deadline a row of the PostgreSQL outbox
// written in the store's transaction, relayed to Kafka when due.
func TestProcessTimeoutOnPostgresAndKafka(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	pool, _ := pgtest.Schema(t)
	require.NoError(t, postgres.Migrate(context.Background(), pool, nil))
	name := dddkittest.UniqueName(t)
	orders, payments, deadLetters := name+"-orders", name+"-payments", name+"-dlq"
	kafkatest.Topics(t, 3, orders, payments, deadLetters)
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(typ string) string {
		if typ == processtest.PaymentType {
			return payments
		}
		return orders
	}})
	ob, err := postgres.NewOutbox(pool, reg, nil)
	require.NoError(t, err)
	store, err := postgres.NewProcessStore(pool, nil)
	require.NoError(t, err)
	client, err := kafka.NewClient(&kafka.Config{Brokers: brokers, Logger: discardLogger})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	processtest.RunTimeout(t, &processtest.Harness{
		Registry:     reg,
		Transport:    client,
		RouterConfig: &eventbus.RouterConfig{Logger: discardLogger, DeadLetterTopic: deadLetters},
		Store:        store,
		Outbox:       ob,
		Write:        ob.Write,
		Publisher:    client.Publisher(),
	})
}
