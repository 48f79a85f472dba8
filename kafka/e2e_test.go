package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
)

// A small state-stored aggregate for the end-to-end test.
type account struct {
	aggregate.Root
	balance int
}

type accountOpened struct{ Owner string }

func (accountOpened) EventName() string { return "bank.account_opened" }

// moneyDeposited is at schema version 2 (version 1 called the field
// "Cents"), so the test also sees the version travel through the outbox.
type moneyDeposited struct{ Amount int }

func (moneyDeposited) EventName() string { return "bank.money_deposited" }
func (moneyDeposited) EventVersion() int { return 2 }

func (a *account) apply(e aggregate.Event) error {
	switch e := e.(type) {
	case accountOpened:
	case moneyDeposited:
		a.balance += e.Amount
	default:
		return errors.New("unknown event")
	}
	return nil
}

type accountRow struct {
	Balance int `json:"balance"`
}

func openAccount(id, owner string, opts ...aggregate.Option) (*account, error) {
	a := &account{}
	a.Init(id, "account", a.apply, opts...)
	return a, a.Record(accountOpened{Owner: owner})
}

// End to end: an aggregate's state and its events saved by the
// repository in one transaction (state row + outbox rows) → relay → Kafka → a handler with inbox,
// with the correlation and causation IDs intact, the events of the
// aggregate in order and the schema version carried along. One registry
// serves the outbox, the relay's topics and the consumer.
func TestEndToEndOutboxKafkaInbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setupPG(t)
	topic := kafkatest.Topic(t, 3)

	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(string) string { return topic }})
	require.NoError(t, eventbus.Register[accountOpened](reg, eventbus.AggregateType("account")))
	// Version 1 called the amount "Cents". Were the version lost on the
	// way, this upcaster would turn every deposit into 0, and the sum
	// below would not be 15.
	require.NoError(t, eventbus.Register[moneyDeposited](reg, eventbus.AggregateType("account"),
		eventbus.Upcaster(1, func(p json.RawMessage) (json.RawMessage, error) {
			var v1 struct{ Cents int }
			if err := json.Unmarshal(p, &v1); err != nil {
				return nil, err
			}
			return json.Marshal(moneyDeposited{Amount: v1.Cents})
		})))

	// Producer side: the repository writes the account's state and its
	// events (into the outbox) in one transaction.
	box, err := postgres.NewOutbox(pg.pool, reg, nil)
	require.NoError(t, err)
	accounts, err := postgres.NewRepository(pg.pool, box, repository.JSON("account",
		func(a *account) accountRow { return accountRow{Balance: a.balance} },
		func(id string, r accountRow) (*account, error) {
			a := &account{balance: r.Balance}
			a.Init(id, "account", a.apply)
			return a, nil
		}), nil)
	require.NoError(t, err)
	client := newClient(t) // one producer for the relay and the router's dead letters
	relay, err := outbox.NewRelay(box, client.Publisher(), reg, &outbox.RelayConfig{
		PollInterval: 50 * time.Millisecond,
		Logger:       testLogger(),
	})
	require.NoError(t, err)
	outboxtest.Start(t, relay, 30*time.Second)

	// Consumer side: one handler name for both event types, so it sees
	// them in the order of the aggregate.
	r, err := eventbus.NewRouter(client, reg, &eventbus.RouterConfig{Logger: testLogger(), DeadLetterTopic: kafkatest.Topic(t, 1)})
	require.NoError(t, err)
	type seen struct {
		env   aggregate.Envelope
		ctxMD aggregate.Metadata
	}
	seenCh := make(chan seen, 10)
	record := func(ctx context.Context, env aggregate.Envelope, amount int) error {
		tx, ok := postgres.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the handler's context")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO effects (event_id, aggregate_id, amount) VALUES ($1, $2, $3)`, env.ID, env.AggregateID, amount); err != nil {
			return err
		}
		seenCh <- seen{env, aggregate.MetadataFromContext(ctx)}
		return nil
	}
	require.NoError(t, eventbus.HandleOnce(r, "statements", pg.inbox, func(ctx context.Context, _ accountOpened, env aggregate.Envelope) error {
		return record(ctx, env, 0)
	}))
	require.NoError(t, eventbus.HandleOnce(r, "statements", pg.inbox, func(ctx context.Context, e moneyDeposited, env aggregate.Envelope) error {
		return record(ctx, env, e.Amount)
	}))
	start(t, r)

	// A request with a correlation ID: open, then deposit twice.
	reqMD := aggregate.Metadata{CorrelationID: "req-42", CausationID: "cmd-7", Values: map[string]string{"tenant": "acme"}}
	reqCtx := aggregate.ContextWithMetadata(ctx, reqMD)
	acct, err := openAccount("acc-"+dddkittest.UniqueSuffix(), "ada", aggregate.WithMetadata(reqMD))
	require.NoError(t, err)
	require.NoError(t, accounts.Save(reqCtx, acct))
	for _, amount := range []int{10, 5} {
		require.NoError(t, accounts.Update(reqCtx, acct.ID(), func(a *account) error { return a.Record(moneyDeposited{Amount: amount}) }))
	}

	var got []seen
	timeout := time.After(60 * time.Second)
	for len(got) < 3 {
		select {
		case s := <-seenCh:
			got = append(got, s)
		case <-timeout:
			t.Fatalf("got %d of 3 events", len(got))
		}
	}
	for i, s := range got {
		require.Equal(t, int64(i+1), s.env.Version, "events of one aggregate in order")
		require.Equal(t, acct.ID(), s.env.AggregateID)
		require.Equal(t, "req-42", s.env.Metadata.CorrelationID)
		require.Equal(t, "cmd-7", s.env.Metadata.CausationID)
		require.Equal(t, "acme", s.env.Metadata.Values["tenant"])
		require.Equal(t, "req-42", s.ctxMD.CorrelationID, "the handler's context keeps the correlation")
		require.Equal(t, s.env.ID, s.ctxMD.CausationID, "and is caused by the event")
	}
	require.Equal(t, []string{"bank.account_opened", "bank.money_deposited", "bank.money_deposited"},
		[]string{got[0].env.Name, got[1].env.Name, got[2].env.Name})
	// The handler reports before its unit of work commits: wait for the
	// last commit.
	testinfra.Eventually(t, 10*time.Second, func() bool {
		return pg.count(t, `SELECT coalesce(sum(amount), 0) FROM effects WHERE aggregate_id = $1`, acct.ID()) == 15
	}, "the three effects committed")
}
