package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/retry"
)

type orderPlaced struct {
	OrderID string
	Amount  int
}

func (orderPlaced) EventName() string { return "shop.order_placed" }

// pgBundle is a schema of the test's own with the dddkit tables migrated
// and an effects table that handlers write to.
type pgBundle struct {
	pool  *pgxpool.Pool
	inbox *postgres.Inbox
}

func setupPG(t testing.TB) *pgBundle {
	t.Helper()
	pool := pgtest.Pool(t)
	ctx := context.Background()
	require.NoError(t, postgres.Migrate(ctx, pool, nil))
	inbox, err := postgres.NewInbox(pool, &postgres.InboxConfig{Logger: testLogger()})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `CREATE TABLE effects (event_id text NOT NULL, aggregate_id text NOT NULL, amount int NOT NULL)`)
	require.NoError(t, err)
	return &pgBundle{pool: pool, inbox: inbox}
}

// processed reports whether the inbox holds the row of event id for
// handler.
func (b *pgBundle) processed(t testing.TB, handler, id string) bool {
	t.Helper()
	return b.count(t, `SELECT count(*) FROM `+postgres.DefaultInboxTable+` WHERE handler = $1 AND event_id = $2`, handler, id) == 1
}

func (b *pgBundle) count(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), query, args...).Scan(&n))
	return n
}

// kafkaBundle is a topic of the test's own with a registry mapping every
// aggregate to it.
type kafkaBundle struct {
	topic, deadLetter string
	client            *kafka.Client
	reg               *eventbus.Registry
	pub               *eventbus.Publisher
}

func setupKafka(t testing.TB, partitions int32) *kafkaBundle {
	t.Helper()
	b := &kafkaBundle{topic: kafkatest.Topic(t, partitions), deadLetter: kafkatest.Topic(t, 1)}
	b.client = newClient(t)
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(string) string { return b.topic }})
	require.NoError(t, eventbus.Register[orderPlaced](reg, eventbus.AggregateType("order")))
	b.reg = reg
	var err error
	b.pub, err = eventbus.NewPublisher(b.client.Publisher(), reg)
	require.NoError(t, err)
	return b
}

func (b *kafkaBundle) router(t testing.TB, deliveries *atomic.Int64) *eventbus.Router {
	t.Helper()
	cfg := &eventbus.RouterConfig{
		Logger:          testLogger(),
		DeadLetterTopic: b.deadLetter,
		Retry:           retry.Policy{MaxAttempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
	}
	if deliveries != nil {
		cfg.Middleware = []message.HandlerMiddleware{func(h message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) {
				deliveries.Add(1)
				return h(msg)
			}
		}}
	}
	r, err := eventbus.NewRouter(b.client, b.reg, cfg)
	require.NoError(t, err)
	return r
}

// start runs r until stop is called (or the test ends).
func start(t *testing.T, r *eventbus.Router) (stop func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case <-r.Running():
	case err := <-done:
		t.Fatalf("router stopped: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			require.NoError(t, r.Close())
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

var seq atomic.Int64

func order(aggID string, amount int) aggregate.Envelope {
	n := seq.Add(1)
	return aggregate.Envelope{
		ID:            fmt.Sprintf("ev-%d-%s", n, dddkittest.UniqueSuffix()),
		Name:          orderPlaced{}.EventName(),
		AggregateType: "order",
		AggregateID:   aggID,
		Version:       n,
		OccurredAt:    time.Now(),
		Payload:       orderPlaced{OrderID: aggID, Amount: amount},
	}
}

// applyOrder is the handler under test: one effect row per event,
// written in the inbox's transaction.
func applyOrder(calls *atomic.Int64) eventbus.HandlerFunc[orderPlaced] {
	return func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
		calls.Add(1)
		tx, ok := postgres.TxFromContext(ctx)
		if !ok {
			return errors.New("the handler's context carries no transaction")
		}
		_, err := tx.Exec(ctx, `INSERT INTO effects (event_id, aggregate_id, amount) VALUES ($1, $2, $3)`, env.ID, env.AggregateID, e.Amount)
		return err
	}
}

type collected struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (c *collected) all() []*message.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*message.Message(nil), c.msgs...)
}

// subscribeAll reads every message of topic into a collection until the
// test ends.
func subscribeAll(t *testing.T, tr eventbus.Transport, topic string) *collected {
	t.Helper()
	sub, err := tr.Subscriber("reader-" + topic)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, topic)
	require.NoError(t, err)
	c := &collected{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			c.mu.Lock()
			c.msgs = append(c.msgs, m)
			c.mu.Unlock()
			m.Ack()
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = sub.Close()
		<-done
	})
	return c
}

// publishOrders publishes n order events from number from on, spread over
// four aggregates.
func (b *kafkaBundle) publishOrders(t testing.TB, from, n int) {
	t.Helper()
	var envs []aggregate.Envelope
	for i := from; i < from+n; i++ {
		envs = append(envs, order(fmt.Sprintf("o-%d", i%4), i))
	}
	require.NoError(t, b.pub.Publish(context.Background(), envs...))
}
