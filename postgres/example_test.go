package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
)

type InvoiceIssued struct {
	Customer string `json:"customer"`
	Cents    int64  `json:"cents"`
}

func (InvoiceIssued) EventName() string { return "billing.invoice_issued" }

// Production wiring of the outbox: events written in the unit of work
// that changes the state, relayed to Kafka by the producer of the
// process's kafka.Client. (Repositories write their aggregates' events
// themselves; code of its own calls Write.)
func ExampleNewOutbox() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := runOutboxRelay(ctx); err != nil {
		log.Print(err)
	}
}

func runOutboxRelay(ctx context.Context) error {
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	// Every replica may run it at start-up: it is versioned and locked.
	if err := postgres.Migrate(ctx, pool, nil); err != nil {
		return err
	}

	// The service's one registry encodes the events and names their topic.
	reg := eventbus.NewRegistry(nil)
	if err := eventbus.Register[InvoiceIssued](reg, eventbus.AggregateType("invoice")); err != nil {
		return err
	}
	box, err := postgres.NewOutbox(pool, reg, nil)
	if err != nil {
		return err
	}

	// Writers: the events go in with the state change, or not at all.
	uow, err := postgres.NewUnitOfWork(pool)
	if err != nil {
		return err
	}
	err = uow.Do(ctx, func(ctx context.Context) error {
		tx, _ := postgres.TxFromContext(ctx)
		if _, err := tx.Exec(ctx, `UPDATE invoices SET status = 'issued' WHERE id = $1`, "inv-1"); err != nil {
			return err
		}
		return box.Write(ctx, aggregate.Envelope{ID: "0190c5a2-7d1e-7c4f-9a53-1f0a5e3c8b21", Name: "billing.invoice_issued",
			AggregateType: "invoice", AggregateID: "inv-1", Version: 1, Payload: InvoiceIssued{Customer: "ada@example.com", Cents: 2500}})
	})
	if err != nil {
		return err
	}

	// The relay: run it in every replica; one leads, the others stand by.
	client, err := kafka.NewClient(&kafka.Config{Brokers: []string{"localhost:9092"}})
	if err != nil {
		return err
	}
	defer client.Close()
	relay, err := outbox.NewRelay(box, client.Publisher(), reg, &outbox.RelayConfig{
		Hooks: outbox.Hooks{OnAttemptFailed: func(f outbox.AttemptFailure) {
			log.Printf("publishing %s %s failed (attempt %d, final %t): %v", f.Event.Name, f.Event.ID, f.Attempts, f.Final, f.Err)
		}},
	})
	if err != nil {
		return err
	}
	return relay.Run(ctx)
}

// Operators look at the outbox and release failed events once the cause
// is fixed.
func ExampleOutbox_Retry() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Print(err)
		return
	}
	defer pool.Close()
	reg := eventbus.NewRegistry(nil)
	box, err := postgres.NewOutbox(pool, reg, nil)
	if err != nil {
		log.Print(err)
		return
	}

	st, err := box.Stats(ctx)
	if err != nil {
		log.Print(err)
		return
	}
	fmt.Printf("pending %d (retrying %d), failed %d, oldest pending %s\n", st.Pending, st.Retrying, st.Failed, st.OldestPending)
	failed, err := box.List(ctx, outbox.StatusFailed, 0, 100)
	if err != nil {
		log.Print(err)
		return
	}
	for _, r := range failed {
		fmt.Println(r.Seq, r.Event.Name, r.Event.AggregateID, r.Attempts, r.LastError)
	}
	// Publish them again, in order; their aggregates' later events follow.
	if _, err := box.Retry(ctx); err != nil {
		log.Print(err)
	}
}
