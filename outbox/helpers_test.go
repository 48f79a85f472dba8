package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/internal/uuidv7"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/outbox"
)

func TestMain(m *testing.M) {
	if runChild() {
		return
	}
	goleak.VerifyTestMain(m,
		// sarama's metrics library starts one global ticker goroutine.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

// ---------------------------------------------------------------- events

type itemAdded struct {
	SKU string `json:"sku"`
	N   int    `json:"n"`
}

func (itemAdded) EventName() string { return "cart.item_added" }

// envelope builds the event of version v of aggregate agg (type "cart").
func envelope(agg string, v int64) aggregate.Envelope {
	return envelopeOf("cart", agg, v)
}

func envelopeOf(typ, agg string, v int64) aggregate.Envelope {
	return aggregate.Envelope{
		ID:            uuidv7.New().String(),
		Name:          itemAdded{}.EventName(),
		AggregateType: typ,
		AggregateID:   agg,
		Version:       v,
		OccurredAt:    time.Now(),
		Payload:       itemAdded{SKU: agg, N: int(v)},
	}
}

// history returns aggregates × versions envelopes, interleaved the way
// concurrent writers would produce them: version 1 of every aggregate,
// then version 2, ...
func history(aggregates, versions int) []aggregate.Envelope {
	out := make([]aggregate.Envelope, 0, aggregates*versions)
	for v := 1; v <= versions; v++ {
		for a := range aggregates {
			out = append(out, envelope("a"+strconv.Itoa(a), int64(v)))
		}
	}
	return out
}

// ------------------------------------------------------------ PostgreSQL

type bundle struct {
	pool   *pgxpool.Pool
	schema string
	cfg    *outbox.Config
	store  *outbox.Store
	admin  *outbox.Admin
}

// setup gives the test its own schema with a migrated outbox table.
func setup(t testing.TB) *bundle {
	t.Helper()
	pool, schema := testinfra.Schema(t)
	cfg := &outbox.Config{Schema: schema, Table: "outbox"}
	require.NoError(t, outbox.Migrate(context.Background(), pool, cfg))
	store, err := outbox.NewStore(cfg)
	require.NoError(t, err)
	admin, err := outbox.NewAdmin(pool, cfg)
	require.NoError(t, err)
	return &bundle{pool: pool, schema: schema, cfg: cfg, store: store, admin: admin}
}

// write commits events in one transaction.
func (b *bundle) write(t testing.TB, events ...aggregate.Envelope) {
	t.Helper()
	require.NoError(t, pgx.BeginFunc(context.Background(), b.pool, func(tx pgx.Tx) error {
		return b.store.Write(context.Background(), tx, events...)
	}))
}

// writeChunks commits events in transactions of n.
func (b *bundle) writeChunks(t testing.TB, n int, events []aggregate.Envelope) {
	t.Helper()
	for chunk := range slices.Chunk(events, n) {
		b.write(t, chunk...)
	}
}

func (b *bundle) count(t testing.TB, where string) int {
	t.Helper()
	var n int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE `+where).Scan(&n))
	return n
}

// runRelay starts r.Run in the background; the returned stop function
// cancels it and waits for Run to return nil.
func runRelay(t testing.TB, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(30 * time.Second):
				t.Error("relay did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// ---------------------------------------------------------- publishers

// recorder is a publisher that keeps what it is given and can refuse
// events of chosen aggregates.
type recorder struct {
	mu     sync.Mutex
	msgs   []*message.Message
	topics []string
	calls  int
	reject func(*message.Message) error
}

func (r *recorder) Publish(topic string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.reject != nil {
		for _, m := range msgs {
			if err := r.reject(m); err != nil {
				return err
			}
		}
	}
	for _, m := range msgs {
		r.msgs = append(r.msgs, m)
		r.topics = append(r.topics, topic)
	}
	return nil
}

func (r *recorder) Close() error { return nil }

func (r *recorder) setReject(f func(*message.Message) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reject = f
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func (r *recorder) messages() []*message.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// rejectAggregate refuses every message of aggregate id.
func rejectAggregate(id string) func(*message.Message) error {
	return func(m *message.Message) error {
		if m.Metadata.Get(wire.HeaderAggregateID) == id {
			return fmt.Errorf("poison: aggregate %s", id)
		}
		return nil
	}
}

var errDown = errors.New("broker down")

// ---------------------------------------------------------- order check

// orderCheck verifies per-aggregate order of consumed events: an event may
// be a duplicate of one seen before, but never skip ahead of a version
// that was not seen yet.
type orderCheck struct {
	maxSeen    map[string]int64
	seen       map[string]bool
	duplicates int
	violations []string
	total      int
}

func newOrderCheck() *orderCheck {
	return &orderCheck{maxSeen: map[string]int64{}, seen: map[string]bool{}}
}

func (c *orderCheck) add(aggID string, version int64, eventID string) {
	c.total++
	if c.seen[eventID] {
		c.duplicates++
		if version > c.maxSeen[aggID] {
			c.violations = append(c.violations, fmt.Sprintf("%s: duplicate v%d ahead of max %d", aggID, version, c.maxSeen[aggID]))
		}
		return
	}
	c.seen[eventID] = true
	if want := c.maxSeen[aggID] + 1; version != want && len(c.violations) < 20 {
		c.violations = append(c.violations, fmt.Sprintf("%s: got v%d, want v%d", aggID, version, want))
	}
	if version > c.maxSeen[aggID] {
		c.maxSeen[aggID] = version
	}
}

func (c *orderCheck) addMessage(t testing.TB, m *message.Message) {
	t.Helper()
	env, err := wire.FromMessage(m)
	require.NoError(t, err)
	c.add(env.AggregateID, env.Version, env.ID)
}

// requireComplete fails unless every aggregate reached version versions
// without order violations.
func (c *orderCheck) requireComplete(t testing.TB, aggregates int, versions int64) {
	t.Helper()
	require.Empty(t, c.violations, "order violations")
	require.Len(t, c.maxSeen, aggregates)
	for agg, v := range c.maxSeen {
		require.Equal(t, versions, v, "aggregate %s", agg)
	}
	require.Len(t, c.seen, aggregates*int(versions))
}
