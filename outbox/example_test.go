package outbox_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
)

type UserRegistered struct{ Email string }

func (UserRegistered) EventName() string { return "auth.user_registered" }

type EmailVerified struct{}

func (EmailVerified) EventName() string { return "auth.email_verified" }

// The in-memory outbox relayed through watermill's GoChannel: what the
// example system runs with no database and no broker.
func Example() {
	ctx := context.Background()
	box := outbox.NewMemory()

	// A repository appends an aggregate's events when its save commits.
	_ = box.Append(ctx,
		aggregate.Envelope{ID: "e1", Name: "auth.user_registered", AggregateType: "user", AggregateID: "u-1", Version: 1,
			Payload: UserRegistered{Email: "ada@example.com"}, Metadata: aggregate.Metadata{CorrelationID: "req-7"}},
		aggregate.Envelope{ID: "e2", Name: "auth.email_verified", AggregateType: "user", AggregateID: "u-1", Version: 2,
			Payload: EmailVerified{}, Metadata: aggregate.Metadata{CorrelationID: "req-7"}},
	)
	fmt.Println("pending:", len(box.Pending()))

	// GoChannel keeps order only when Publish waits for the subscriber's ack.
	bus := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	defer bus.Close()
	msgs, _ := bus.Subscribe(ctx, outbox.DefaultTopic("user")) // "user.events"
	go func() {
		for m := range msgs {
			fmt.Println(m.Metadata.Get(outbox.HeaderAggregateID), m.Metadata.Get(outbox.HeaderAggregateVersion),
				m.Metadata.Get(outbox.HeaderEventName), m.Metadata.Get(outbox.HeaderCorrelationID), string(m.Payload))
			m.Ack()
		}
	}()

	relay, _ := outbox.NewMemoryRelay(box, bus, nil)
	n, err := relay.Flush(ctx) // a service runs relay.Run(ctx) instead
	fmt.Println("published:", n, err, "pending:", len(box.Pending()))
	// Output:
	// pending: 2
	// u-1 1 auth.user_registered req-7 {"Email":"ada@example.com"}
	// u-1 2 auth.email_verified req-7 {}
	// published: 2 <nil> pending: 0
}

// Production wiring: PostgreSQL outbox, events written in the caller's
// transaction, relayed to Kafka by the producer of a kafka.Client.
func ExampleRelay() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runService(ctx); err != nil {
		log.Print(err)
	}
}

func runService(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()

	// Once per deployment (safe to run from every replica at start-up).
	if err := outbox.Migrate(ctx, pool, nil); err != nil {
		return err
	}

	// Writers: the events go in with the state change, or not at all.
	store, err := outbox.NewStore(nil)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// ... UPDATE the aggregate's row in tx ...
		return store.Write(ctx, tx, aggregate.Envelope{ID: "0190c5a2-…", Name: "auth.user_registered",
			AggregateType: "user", AggregateID: "u-1", Version: 1, Payload: UserRegistered{Email: "ada@example.com"}})
	})
	if err != nil {
		return err
	}

	// The relay: run it in every replica; one leads, the others stand by.
	// One kafka.Client per process: its producer serves the relay, an
	// eventbus.Publisher and the consumers' dead letters alike.
	client, err := kafka.NewClient(&kafka.Config{Brokers: []string{"localhost:9092"}})
	if err != nil {
		return err
	}
	defer client.Close()
	relay, err := outbox.NewRelay(pool, client.Publisher(), &outbox.RelayConfig{
		Hooks: outbox.Hooks{OnAttemptFailed: func(f outbox.AttemptFailure) {
			log.Printf("publishing %s %s failed (attempt %d, final %t): %v", f.Event.Name, f.Event.ID, f.Attempts, f.Final, f.Err)
		}},
	})
	if err != nil {
		return err
	}
	return relay.Run(ctx)
}

// Operators look at the outbox and release failed events.
func ExampleAdmin() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Print(err)
		return
	}
	defer pool.Close()
	admin, err := outbox.NewAdmin(pool, nil)
	if err != nil {
		log.Print(err)
		return
	}

	st, err := admin.Stats(ctx)
	if err != nil {
		log.Print(err)
		return
	}
	fmt.Printf("pending %d (retrying %d), failed %d, oldest pending %s\n", st.Pending, st.Retrying, st.Failed, st.OldestPending)

	failed, _ := admin.Failed(ctx, 0, 100)
	for _, r := range failed {
		fmt.Println(r.Seq, r.Event.Name, r.Event.AggregateID, r.Attempts, r.LastError)
	}
	// After fixing the cause: publish them again, in order.
	if _, err := admin.RetryAllFailed(ctx); err != nil {
		log.Print(err)
	}
}
