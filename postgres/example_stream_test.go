package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
)

// Account, event-sourced, snapshotted every 500 events, so that a load
// replays at most 499 of them. The snapshot's schema version (here 1)
// goes up when accountRow changes shape: older snapshots are then
// ignored and the accounts rebuilt from their events. (Not run: it needs
// a database.)
func ExampleNewEventStore_snapshots() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Print(err)
		return
	}
	defer pool.Close()
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[AccountOpened](reg, eventbus.AggregateType("account"))
	_ = eventbus.Register[Deposited](reg, eventbus.AggregateType("account"))
	ob, _ := postgres.NewOutbox(pool, reg, nil)

	accounts, err := postgres.NewEventStore(pool, ob, repository.EventMapping[*Account]{
		Type: "account",
		New: func(id string) *Account {
			a := &Account{}
			a.Init(id, "account", a.apply)
			return a
		},
		// The state mapping's snapshot struct serves the snapshots too.
		Snapshot: repository.JSONSnapshot(500, 1,
			func(a *Account) accountRow { return accountRow{Owner: a.owner, Balance: a.balance} },
			func(id string, r accountRow) (*Account, error) {
				a := &Account{owner: r.Owner, balance: r.Balance}
				a.Init(id, "account", a.apply)
				return a, nil
			}),
	}, nil)
	if err != nil {
		log.Print(err)
		return
	}
	if err := accounts.Update(ctx, "acc-1", func(a *Account) error { return a.Deposit(10) }); err != nil {
		log.Print(err)
	}
}

// A catch-up subscription to the deposits of every account: it reads the
// events table from the position it last handled, then follows new
// commits, woken by NOTIFY. A projection stores the position of the last
// event it applied with its read model and passes it as after on
// restart. (Not run: it needs a database.)
func ExampleNewEventStream() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Print(err)
		return
	}
	defer pool.Close()
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[AccountOpened](reg, eventbus.AggregateType("account"))
	_ = eventbus.Register[Deposited](reg, eventbus.AggregateType("account"))
	stream, err := postgres.NewEventStream(pool, reg, nil)
	if err != nil {
		log.Print(err)
		return
	}
	defer stream.Close()

	var after int64 // the checkpoint; 0 = from the start
	filter := repository.StreamFilter{EventNames: []string{Deposited{}.EventName()}}
	err = repository.Follow(ctx, stream, after, filter, 500, func(ctx context.Context, events []repository.StoredEvent) error {
		for _, e := range events {
			fmt.Println(e.Position, e.Event.AggregateID, e.Event.Payload.(Deposited).Amount)
		}
		return nil // a projection commits its read model and the last position here
	})
	log.Print(err)
}
