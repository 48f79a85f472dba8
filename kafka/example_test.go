package kafka_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
)

type UserRegistered struct {
	Email string `json:"email"`
}

func (UserRegistered) EventName() string { return "auth.user_registered" }

// One client per process: its one producer relays the outbox, publishes
// events directly and carries the router's dead letters; the router's
// consumer groups come from the same configuration.
func ExampleNewClient() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runAccounts(ctx); err != nil {
		log.Print(err)
	}
}

func runAccounts(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()

	client, err := kafka.NewClient(&kafka.Config{
		Brokers:  []string{"localhost:9092"},
		ClientID: "accounts",
		Configure: func(c *sarama.Config) { // anything not about safety may be tuned
			c.Net.TLS.Enable = true
			c.Net.TLS.Config = &tls.Config{MinVersion: tls.VersionTLS13}
		},
	})
	if err != nil {
		return err
	}
	defer client.Close() // closes the one producer

	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "//orders.example.com"})
	_ = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))

	box, err := postgres.NewOutbox(pool, reg, nil)
	if err != nil {
		return err
	}
	relay, err := outbox.NewRelay(box, client.Publisher(), reg, nil)
	if err != nil {
		return err
	}
	go func() { _ = relay.Run(ctx) }()

	router, err := eventbus.NewRouter(client, reg, nil)
	if err != nil {
		return err
	}
	err = eventbus.Handle(router, "welcome-mail", func(_ context.Context, e UserRegistered, _ aggregate.Envelope) error {
		log.Printf("welcome %s", e.Email)
		return nil
	})
	if err != nil {
		return err
	}
	return router.Run(ctx)
}

// On a Client, a router's HandleOnce handler applies a partition's events
// in batches: one transaction (and one inbox statement) per batch.
func ExampleClient_ConsumeBatches() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://localhost/app")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, nil); err != nil { // the inbox table among them
		fmt.Println(err)
		return
	}
	inbox, _ := postgres.NewInbox(pool, nil)

	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "//orders.example.com"})
	_ = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
	client, err := kafka.NewClient(&kafka.Config{Brokers: []string{"localhost:9092"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	router, err := eventbus.NewRouter(client, reg, &eventbus.RouterConfig{MaxBatch: 1000})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = eventbus.HandleOnce(router, "user-directory", inbox,
		func(ctx context.Context, e UserRegistered, env aggregate.Envelope) error {
			tx, _ := postgres.TxFromContext(ctx) // the batch's transaction
			_, err := tx.Exec(ctx, `INSERT INTO user_directory (email, registered_at) VALUES ($1, $2)`, e.Email, env.OccurredAt)
			return err
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = router.Run(ctx) // the Router calls client.ConsumeBatches for "user-directory"
}

// Validate reports every problem at once; NewClient calls it.
func ExampleConfig_Validate() {
	err := (&kafka.Config{InitialOffset: 5, Version: sarama.V0_10_2_0}).Validate()
	fmt.Println(err)
	// Output:
	// kafka: Config.Brokers is empty
	// kafka: Config.Version 0.10.2.0 is older than 0.11, which the idempotent producer needs
	// kafka: Config.InitialOffset is 5, want sarama.OffsetOldest or sarama.OffsetNewest
}
