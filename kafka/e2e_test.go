package kafka_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
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
// "Cents"), so the test also sees the version header travel through the
// outbox.
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

func openAccount(id, owner string) (*account, error) {
	a := &account{}
	a.Init(id, "account", a.apply)
	return a, a.Record(accountOpened{Owner: owner})
}

// End to end: an aggregate saved through the PostgreSQL repository → outbox
// (same transaction) → relay → Kafka → a handler with inbox, with the
// correlation and causation IDs intact and the events of the aggregate in
// order.
func TestEndToEndRepositoryOutboxKafkaInbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := setupPG(t)
	topic := testinfra.Topic(t, 3)

	// Producer side.
	require.NoError(t, repository.Migrate(ctx, pg.pool, nil))
	require.NoError(t, outbox.Migrate(ctx, pg.pool, nil))
	store, err := outbox.NewStore(nil)
	require.NoError(t, err)
	mapping := repository.JSON("account",
		func(a *account) map[string]int { return map[string]int{"balance": a.balance} },
		func(id string, s map[string]int) (*account, error) {
			a := &account{balance: s["balance"]}
			a.Init(id, "account", a.apply)
			return a, nil
		})
	repo, err := repository.NewPostgres(pg.pool, store, mapping, nil)
	require.NoError(t, err)
	client := newClient(t) // one producer for the relay and the router's dead letters
	relay, err := outbox.NewRelay(pg.pool, client.Publisher(), &outbox.RelayConfig{
		Topic:        func(aggregate.Envelope) string { return topic },
		PollInterval: 50 * time.Millisecond,
		Logger:       testLogger(),
	})
	require.NoError(t, err)
	relayCtx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan error, 1)
	go func() { relayDone <- relay.Run(relayCtx) }()
	t.Cleanup(func() {
		stopRelay()
		if err := <-relayDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("relay: %v", err)
		}
	})

	// Consumer side: one handler name for both event types, so it sees
	// them in the order of the aggregate.
	reg, err := eventbus.NewRegistry(&eventbus.RegistryConfig{Topic: func(string) string { return topic }})
	require.NoError(t, err)
	require.NoError(t, eventbus.Register[accountOpened](reg, eventbus.AggregateType("account")))
	require.NoError(t, eventbus.Register[moneyDeposited](reg, eventbus.AggregateType("account")))
	r, err := eventbus.NewRouter(client, reg, &eventbus.RouterConfig{Logger: testLogger(), DeadLetterTopic: testinfra.Topic(t, 1)})
	require.NoError(t, err)
	type seen struct {
		md    eventbus.Metadata
		ctxMD aggregate.Metadata
	}
	seenCh := make(chan seen, 10)
	record := func(ctx context.Context, tx pgx.Tx, md eventbus.Metadata, amount int) error {
		if _, err := tx.Exec(ctx, `INSERT INTO effects (event_id, aggregate_id, amount) VALUES ($1, $2, $3)`, md.EventID, md.AggregateID, amount); err != nil {
			return err
		}
		seenCh <- seen{md, aggregate.MetadataFromContext(ctx)}
		return nil
	}
	require.NoError(t, eventbus.HandleTx(r, "statements", pg.inbox, func(ctx context.Context, tx pgx.Tx, _ accountOpened, md eventbus.Metadata) error {
		return record(ctx, tx, md, 0)
	}))
	require.NoError(t, eventbus.HandleTx(r, "statements", pg.inbox, func(ctx context.Context, tx pgx.Tx, e moneyDeposited, md eventbus.Metadata) error {
		return record(ctx, tx, md, e.Amount)
	}))
	start(t, r)

	// A request with a correlation ID: open, then deposit twice.
	reqCtx := aggregate.ContextWithMetadata(ctx, aggregate.Metadata{CorrelationID: "req-42", CausationID: "cmd-7", Values: map[string]string{"tenant": "acme"}})
	acct, err := openAccount("acc-"+testinfra.Suffix(), "ada")
	require.NoError(t, err)
	require.NoError(t, repo.Save(reqCtx, acct))
	for _, amount := range []int{10, 5} {
		require.NoError(t, repo.Update(reqCtx, acct.ID(), func(a *account) error { return a.Record(moneyDeposited{Amount: amount}) }))
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
		require.Equal(t, int64(i+1), s.md.AggregateVersion, "events of one aggregate in order")
		require.Equal(t, acct.ID(), s.md.AggregateID)
		require.Equal(t, "req-42", s.md.CorrelationID)
		require.Equal(t, "cmd-7", s.md.CausationID)
		require.Equal(t, "acme", s.md.Values["tenant"])
		require.Equal(t, "req-42", s.ctxMD.CorrelationID, "the handler's context keeps the correlation")
		require.Equal(t, s.md.EventID, s.ctxMD.CausationID, "and is caused by the event")
	}
	require.Equal(t, []string{"bank.account_opened", "bank.money_deposited", "bank.money_deposited"},
		[]string{got[0].md.EventName, got[1].md.EventName, got[2].md.EventName})
	require.Equal(t, []int{1, 2, 2}, []int{got[0].md.SchemaVersion, got[1].md.SchemaVersion, got[2].md.SchemaVersion})
	require.Equal(t, 15, pg.count(t, `SELECT sum(amount) FROM effects WHERE aggregate_id = $1`, acct.ID()))
}
