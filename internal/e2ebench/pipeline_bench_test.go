package e2ebench_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
)

// ticket is the aggregate the commands create: one event each.
type ticket struct {
	aggregate.Root
	seat int
}

type ticketSold struct {
	Seat int `json:"seat"`
}

func (ticketSold) EventName() string { return "bench.ticket_sold" }

func (t *ticket) apply(e aggregate.Event) error {
	switch e := e.(type) {
	case ticketSold:
		t.seat = e.Seat
		return nil
	}
	return errors.New("unknown event")
}

type ticketRow struct {
	Seat int `json:"seat"`
}

var ticketMapping = repository.JSON("ticket",
	func(t *ticket) ticketRow { return ticketRow{Seat: t.seat} },
	func(id string, r ticketRow) (*ticket, error) {
		t := &ticket{seat: r.Seat}
		t.Init(id, "ticket", t.apply)
		return t, nil
	})

// sellTicket is the command.
type sellTicket struct {
	ID   string
	Seat int
}

// envInt is the integer in the environment variable name, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// pipeline is one service wired as Example_wiring (the README's quick
// start) wires it, in a schema and on a topic of its own: bus with
// retry and unit of work → repository → outbox → relay → Kafka → router
// with a HandleOnce handler (inbox) whose transaction inserts a row into
// effects.
type pipeline struct {
	bus *cqrs.Bus

	mu        sync.Mutex
	committed map[string]time.Time // ticket ID → when its command returned
	handled   map[string]time.Time // ticket ID → when its handler ran
	count     atomic.Int64
	want      atomic.Int64
	done      chan struct{}
}

func newPipeline(b *testing.B) *pipeline {
	b.Helper()
	brokers := kafkatest.Brokers(b)
	ctx := context.Background()
	dbURL, _ := pgtest.SchemaURL(b)
	cfg, err := pgxpool.ParseConfig(dbURL)
	require.NoError(b, err)
	cfg.MaxConns = int32(envInt("BENCH_E2E_CONNS", 24))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	require.NoError(b, postgres.Migrate(ctx, pool, nil))
	_, err = pool.Exec(ctx, `CREATE TABLE effects (event_id text PRIMARY KEY, ticket text NOT NULL, seat int NOT NULL)`)
	require.NoError(b, err)

	topic := kafkatest.Topic(b, int32(envInt("BENCH_E2E_PARTITIONS", 8)))
	deadLetters := kafkatest.Topic(b, 1)
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:bench", Topic: func(string) string { return topic }})
	require.NoError(b, eventbus.Register[ticketSold](reg, eventbus.AggregateType("ticket")))
	box, err := postgres.NewOutbox(pool, reg, nil)
	require.NoError(b, err)
	tickets, err := postgres.NewRepository(pool, box, ticketMapping, nil)
	require.NoError(b, err)
	uow, err := postgres.NewUnitOfWork(pool)
	require.NoError(b, err)

	p := &pipeline{committed: map[string]time.Time{}, handled: map[string]time.Time{}, done: make(chan struct{})}
	retryConflicts, err := cqrs.Retry(nil)
	require.NoError(b, err)
	p.bus, err = cqrs.New(&cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Recover(), retryConflicts, cqrs.Transaction(uow)}})
	require.NoError(b, err)
	require.NoError(b, cqrs.HandleCommand(p.bus, func(ctx context.Context, c sellTicket) (struct{}, error) {
		t := &ticket{}
		t.Init(c.ID, "ticket", t.apply)
		if err := t.Record(ticketSold{Seat: c.Seat}); err != nil {
			return struct{}{}, err
		}
		return struct{}{}, tickets.Save(ctx, t)
	}))

	logger := slog.New(slog.DiscardHandler)
	client, err := kafka.NewClient(&kafka.Config{Brokers: brokers, ClientID: "dddkit-e2ebench", Logger: logger})
	require.NoError(b, err)
	relay, err := outbox.NewRelay(box, client.Publisher(), reg, &outbox.RelayConfig{Logger: logger})
	require.NoError(b, err)
	inbox, err := postgres.NewInbox(pool, &postgres.InboxConfig{Logger: logger})
	require.NoError(b, err)
	router, err := eventbus.NewRouter(client, reg, &eventbus.RouterConfig{Logger: logger, DeadLetterTopic: deadLetters})
	require.NoError(b, err)
	require.NoError(b, eventbus.HandleOnce(router, "effects", inbox, func(ctx context.Context, e ticketSold, env aggregate.Envelope) error {
		tx, ok := postgres.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the handler's context")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO effects (event_id, ticket, seat) VALUES ($1, $2, $3)`, env.ID, env.AggregateID, e.Seat); err != nil {
			return err
		}
		p.mu.Lock()
		_, again := p.handled[env.AggregateID]
		if !again {
			p.handled[env.AggregateID] = time.Now()
		}
		p.mu.Unlock()
		if !again && p.count.Add(1) == p.want.Load() {
			close(p.done)
		}
		return nil
	}))

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = relay.Run(runCtx) })
	wg.Go(func() { _ = router.Run(runCtx) })
	b.Cleanup(func() {
		cancel()
		_ = router.Close()
		wg.Wait()
		require.NoError(b, client.Close())
	})
	<-router.Running()

	// One command through the whole pipeline: groups joined, producer
	// connected, statements prepared.
	p.want.Store(1)
	p.send(ctx, b, "warm-up", 0)
	p.wait(b, 60*time.Second)
	return p
}

// send runs the command selling seat of ticket id and records when it
// returned (its unit of work committed).
func (p *pipeline) send(ctx context.Context, b *testing.B, id string, seat int) {
	if _, err := cqrs.Send[struct{}](ctx, p.bus, sellTicket{ID: id, Seat: seat}); err != nil {
		b.Error(err)
		return
	}
	now := time.Now()
	p.mu.Lock()
	p.committed[id] = now
	p.mu.Unlock()
}

// expect resets the counters for n more events.
func (p *pipeline) expect(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.committed, p.handled = map[string]time.Time{}, map[string]time.Time{}
	p.count.Store(0)
	p.done = make(chan struct{})
	p.want.Store(int64(n))
}

func (p *pipeline) wait(b *testing.B, timeout time.Duration) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		b.Fatalf("handled %d of %d events in %s", p.count.Load(), p.want.Load(), timeout)
	}
}

// latencies returns commit → handled of every event, sorted.
func (p *pipeline) latencies(b *testing.B) []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := make([]time.Duration, 0, len(p.committed))
	for id, c := range p.committed {
		h, ok := p.handled[id]
		require.True(b, ok, "ticket %s not handled", id)
		d = append(d, max(h.Sub(c), 0))
	}
	slices.Sort(d)
	return d
}

func pct(d []time.Duration, p float64) float64 {
	return float64(d[int(float64(len(d)-1)*p)]) / float64(time.Millisecond)
}

// BenchmarkPipeline measures a service's whole event path: commands on
// the cqrs bus (retry and unit of work middleware) each create an
// aggregate with one event through the PostgreSQL repository (state row
// + outbox row in one transaction); the outbox relay publishes the
// events to Kafka through the client's producer; a HandleOnce consumer
// with the PostgreSQL inbox inserts a row per event in the inbox's
// transaction.
//
// "throughput" sends BENCH_E2E_EVENTS commands (default 20,000) from
// BENCH_E2E_WORKERS goroutines (default 16) as fast as they go and
// reports events/s from the first command to the last event handled.
// "latency_1000_per_s" sends 1,000 commands/s for BENCH_E2E_SECONDS
// (default 5) from BENCH_E2E_RATE_WRITERS goroutines (default 32, each
// on its own schedule) and reports commit → handled in ms (p50, p99, max): from
// the return of the command (its transaction committed) to the handler
// having written its row (its transaction commits right after).
// The topic has BENCH_E2E_PARTITIONS partitions (default 8).
//
//	scripts/testenv.sh go test -run '^$' -bench BenchmarkPipeline -benchtime 1x -count 3 ./internal/e2ebench/
func BenchmarkPipeline(b *testing.B) {
	kafkatest.Brokers(b)
	b.Run("throughput", func(b *testing.B) {
		p := newPipeline(b)
		n, workers := envInt("BENCH_E2E_EVENTS", 20_000), envInt("BENCH_E2E_WORKERS", 16)
		ctx := context.Background()
		var elapsed time.Duration
		for i := range b.N {
			p.expect(n)
			prefix := "t" + strconv.Itoa(i) + "-" + dddkittest.UniqueSuffix() + "-"
			var next atomic.Int64
			start := time.Now()
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for k := int(next.Add(1)); k <= n; k = int(next.Add(1)) {
						p.send(ctx, b, prefix+strconv.Itoa(k), k)
					}
				})
			}
			wg.Wait()
			sent := time.Since(start)
			p.wait(b, 10*time.Minute)
			elapsed += time.Since(start)
			b.ReportMetric(float64(n)/sent.Seconds(), "commands/s")
		}
		lat := p.latencies(b)
		b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "events/s")
		b.ReportMetric(pct(lat, 0.50), "p50_ms")
		b.ReportMetric(pct(lat, 0.99), "p99_ms")
		b.ReportMetric(0, "ns/op")
	})
	b.Run("latency_1000_per_s", func(b *testing.B) {
		p := newPipeline(b)
		const rate = 1000
		// Enough writers that one slow command does not hold the rate up.
		writers := envInt("BENCH_E2E_RATE_WRITERS", 32)
		seconds := envInt("BENCH_E2E_SECONDS", 5)
		ctx := context.Background()
		var all []time.Duration
		for i := range b.N {
			perWriter := rate * seconds / writers
			p.expect(perWriter * writers)
			prefix := "l" + strconv.Itoa(i) + "-" + dddkittest.UniqueSuffix() + "-"
			interval := time.Second * time.Duration(writers) / rate
			start := time.Now().Add(10 * time.Millisecond)
			var late atomic.Int64
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for k := range perWriter {
						at := start.Add(time.Duration(k)*interval + time.Duration(w)*interval/time.Duration(writers))
						if d := time.Until(at); d > 0 {
							time.Sleep(d)
						} else if d < -interval {
							late.Add(1)
						}
						p.send(ctx, b, prefix+strconv.Itoa(w)+"-"+strconv.Itoa(k), k)
					}
				})
			}
			wg.Wait()
			p.wait(b, 2*time.Minute)
			all = append(all, p.latencies(b)...)
			// Commands sent more than one writer's interval behind
			// schedule: the producer side could not keep up the rate.
			b.ReportMetric(float64(late.Load()), "late_sends")
		}
		slices.Sort(all)
		b.ReportMetric(pct(all, 0.50), "p50_ms")
		b.ReportMetric(pct(all, 0.99), "p99_ms")
		b.ReportMetric(float64(all[len(all)-1])/float64(time.Millisecond), "max_ms")
		b.ReportMetric(0, "ns/op")
	})
}
