package aggregate_test

import (
	"fmt"
	"time"

	"github.com/dddkit/dddkit/aggregate"
)

// A small aggregate: an account that can be opened and credited.
type Account struct {
	aggregate.Root
	balance int
}

type AccountOpened struct {
	Owner string `json:"owner"`
}

func (AccountOpened) EventName() string { return "bank.account_opened" }

type MoneyDeposited struct {
	Amount int `json:"amount"`
}

func (MoneyDeposited) EventName() string { return "bank.money_deposited" }

func OpenAccount(id, owner string, clock aggregate.Clock) (*Account, error) {
	a := &Account{}
	a.Init(id, "account", a.apply, aggregate.WithClock(clock))
	return a, a.Record(AccountOpened{Owner: owner})
}

// Deposit checks the rule, then records the fact; apply changes the state.
func (a *Account) Deposit(amount int) error {
	if amount <= 0 {
		return fmt.Errorf("deposit must be positive, got %d", amount)
	}
	return a.Record(MoneyDeposited{Amount: amount})
}

func (a *Account) apply(e aggregate.Event) error {
	switch e := e.(type) {
	case AccountOpened:
	case MoneyDeposited:
		a.balance += e.Amount
	default:
		return fmt.Errorf("unknown event %T", e)
	}
	return nil
}

func Example() {
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	acct, _ := OpenAccount("acc-1", "ada", clock)
	_ = acct.Deposit(30)
	fmt.Println("deposit -5:", acct.Deposit(-5))

	for _, e := range acct.Changes() {
		fmt.Println(e.Version, e.Name, e.AggregateType, e.AggregateID, e.OccurredAt.Format(time.RFC3339))
	}
	fmt.Println("balance:", acct.balance, "version:", acct.Version(), "committed:", acct.CommittedVersion())

	aggregate.MarkCommitted(acct, acct.Version()) // what a repository does after its transaction commits
	fmt.Println("after save:", len(acct.Changes()), "uncommitted, committed version", acct.CommittedVersion())
	// Output:
	// deposit -5: deposit must be positive, got -5
	// 1 bank.account_opened account acc-1 2026-01-02T03:04:05Z
	// 2 bank.money_deposited account acc-1 2026-01-02T03:04:05Z
	// balance: 30 version: 2 committed: 0
	// after save: 0 uncommitted, committed version 2
}

// An event-sourced repository rebuilds an aggregate from its history with
// Replay; the options it passes, such as the caller's clock, apply to the
// events the aggregate records afterwards.
func ExampleReplay() {
	history := []aggregate.Envelope{
		{Version: 1, Payload: AccountOpened{Owner: "ada"}},
		{Version: 2, Payload: MoneyDeposited{Amount: 10}},
		{Version: 3, Payload: MoneyDeposited{Amount: 5}},
	}
	a := &Account{}
	a.Init("acc-1", "account", a.apply)
	clock := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	if err := aggregate.Replay(a, history, aggregate.WithClock(clock)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("balance:", a.balance, "version:", a.Version(), "uncommitted:", len(a.Changes()))

	_ = a.Deposit(1)
	e := a.Changes()[0]
	fmt.Println(e.Version, e.Name, e.OccurredAt.Format(time.RFC3339))
	// Output:
	// balance: 15 version: 3 uncommitted: 0
	// 4 bank.money_deposited 2026-01-02T03:04:05Z
}

// A state-stored repository builds the aggregate from its row and then
// restores the stored version.
func ExampleRestore() {
	a := &Account{balance: 40} // the mapping sets the fields from the row
	a.Init("acc-1", "account", a.apply)
	if err := aggregate.Restore(a, 7); err != nil {
		fmt.Println(err)
		return
	}
	_ = a.Deposit(2)
	fmt.Println("balance:", a.balance, "version:", a.Version(), "committed:", a.CommittedVersion())
	// Output: balance: 42 version: 8 committed: 7
}
