package postgres_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/retry"
)

// Account is a domain aggregate of the examples.
type Account struct {
	aggregate.Root
	owner   string
	balance int
}

// AccountOpened and Deposited are its events.
type (
	AccountOpened struct {
		Owner string `json:"owner"`
	}
	Deposited struct {
		Amount int `json:"amount"`
	}
)

func (AccountOpened) EventName() string { return "bank.account_opened" }
func (Deposited) EventName() string     { return "bank.deposited" }

func OpenAccount(id, owner string) (*Account, error) {
	a := &Account{}
	a.Init(id, "account", a.apply)
	return a, a.Record(AccountOpened{Owner: owner})
}

func (a *Account) Deposit(n int) error { return a.Record(Deposited{Amount: n}) }

func (a *Account) apply(e aggregate.Event) error {
	switch e := e.(type) {
	case AccountOpened:
		a.owner = e.Owner
	case Deposited:
		a.balance += e.Amount
	}
	return nil
}

type accountRow struct {
	Owner   string `json:"owner"`
	Balance int    `json:"balance"`
}

var accountMapping = repository.JSON("account",
	func(a *Account) accountRow { return accountRow{Owner: a.owner, Balance: a.balance} },
	func(id string, r accountRow) (*Account, error) {
		a := &Account{owner: r.Owner, balance: r.Balance}
		a.Init(id, "account", a.apply)
		return a, nil
	})

// Start-up: one registry, migrations, the outbox and a repository; then
// two aggregates and a row of the caller's own in one unit of work.
// (Not run: it needs a database.)
func ExampleNewRepository() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://localhost/app")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()

	// Every event type is registered once, for the outbox, the event
	// store and the consumers.
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:service:shop"})
	_ = eventbus.Register[AccountOpened](reg, eventbus.AggregateType("account"))
	_ = eventbus.Register[Deposited](reg, eventbus.AggregateType("account"))

	if err := postgres.Migrate(ctx, pool, nil); err != nil {
		fmt.Println(err)
		return
	}
	ob, _ := postgres.NewOutbox(pool, reg, nil)
	accounts, _ := postgres.NewRepository(pool, ob, accountMapping, &postgres.RepositoryConfig{
		Retry: &retry.Policy{MaxAttempts: 3},
	})
	uow, _ := postgres.NewUnitOfWork(pool)

	// One aggregate, its own transaction: state row + outbox rows.
	if err := accounts.Update(ctx, "acc-1", func(a *Account) error { return a.Deposit(10) }); err != nil {
		fmt.Println(err)
	}

	// Several aggregates and the caller's own SQL in one transaction;
	// the aggregates are marked committed once it commits.
	a, _ := OpenAccount("acc-2", "grace")
	b, _ := OpenAccount("acc-3", "alan")
	err = uow.Do(ctx, func(ctx context.Context) error {
		if err := accounts.Save(ctx, a); err != nil {
			return err
		}
		if err := accounts.Save(ctx, b); err != nil {
			return err
		}
		tx, _ := postgres.TxFromContext(ctx)
		_, err := tx.Exec(ctx, `INSERT INTO audit (what) VALUES ('two accounts opened')`)
		return err
	})
	fmt.Println(err)
}

// ErrAccountExists is the domain's error for an account number taken.
var ErrAccountExists = errors.New("bank: the account number is taken")

// In a unit of work, a save goes out with the COMMIT, and a taken ID is
// the unit's error. A function that turns it into an error of its own
// domain inside the unit sends the save first with Flush. (Not run: it
// needs a database.)
func ExampleFlush() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://localhost/app")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:service:shop"})
	_ = eventbus.Register[AccountOpened](reg, eventbus.AggregateType("account"))
	ob, _ := postgres.NewOutbox(pool, reg, nil)
	accounts, _ := postgres.NewRepository(pool, ob, accountMapping, nil)
	uow, _ := postgres.NewUnitOfWork(pool)

	a, _ := OpenAccount("acc-7", "ada")
	err = uow.Do(ctx, func(ctx context.Context) error {
		if err := accounts.Save(ctx, a); err != nil {
			return err
		}
		err := postgres.Flush(ctx)
		if errors.Is(err, aggregate.ErrAlreadyExists) {
			return fmt.Errorf("%w: %s", ErrAccountExists, a.ID())
		}
		return err
	})
	fmt.Println(errors.Is(err, ErrAccountExists))
}
