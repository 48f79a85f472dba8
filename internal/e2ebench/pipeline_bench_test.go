package e2ebench_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
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

// sellTicket is the command: it sells Seats seats of ticket ID, one
// event each.
type sellTicket struct {
	ID    string
	Seats int
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
// effects per event: with postgres.QueueExec (sent with the batch's
// inbox rows, as the postgres package documents for batch handlers), or
// with BENCH_E2E_WRITE=exec one tx.Exec round trip per event.
type pipeline struct {
	bus *cqrs.Bus

	mu        sync.Mutex
	committed map[string]time.Time // ticket ID → when its command returned
	published map[string]time.Time // ticket ID/version → when the relay had it acknowledged
	handled   map[string]time.Time // ticket ID/version → when its handler ran
	calls     []time.Duration      // how long the relay's publish calls took
	callEvts  int                  // the events they carried
	count     atomic.Int64
	want      atomic.Int64
	done      chan struct{}
}

// eventKey names one event of the pipeline: its ticket and version.
func eventKey(env aggregate.Envelope) string {
	return env.AggregateID + "/" + strconv.FormatInt(env.Version, 10)
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

	p := &pipeline{committed: map[string]time.Time{}, published: map[string]time.Time{}, handled: map[string]time.Time{}, done: make(chan struct{})}
	retryConflicts, err := cqrs.Retry(nil)
	require.NoError(b, err)
	middleware := []cqrs.Middleware{cqrs.Recover(), retryConflicts, cqrs.Transaction(uow)}
	if os.Getenv("BENCH_E2E_UNIT") == "off" {
		middleware = middleware[:2] // the save commits on its own
	}
	p.bus, err = cqrs.New(&cqrs.Config{CommandMiddleware: middleware})
	require.NoError(b, err)
	require.NoError(b, cqrs.HandleCommand(p.bus, func(ctx context.Context, c sellTicket) (struct{}, error) {
		t := &ticket{}
		t.Init(c.ID, "ticket", t.apply)
		for seat := range c.Seats {
			if err := t.Record(ticketSold{Seat: seat}); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, tickets.Save(ctx, t)
	}))

	logger := slog.New(slog.DiscardHandler)
	client, err := kafka.NewClient(&kafka.Config{Brokers: brokers, ClientID: "dddkit-e2ebench", Logger: logger, Configure: func(c *sarama.Config) {
		if us, err := strconv.Atoi(os.Getenv("BENCH_E2E_LINGER_US")); err == nil {
			c.Producer.Flush.Frequency = time.Duration(us) * time.Microsecond // 0 (no linger) by default
		}
	}})
	require.NoError(b, err)
	relay, err := outbox.NewRelay(box, client.Publisher(), reg, &outbox.RelayConfig{MaxInFlight: envInt("BENCH_E2E_INFLIGHT", 0), BatchSize: envInt("BENCH_E2E_BATCH", 0), Logger: logger, Hooks: outbox.Hooks{
		OnPublished: func(evs []aggregate.Envelope, took time.Duration) {
			now := time.Now()
			p.mu.Lock()
			defer p.mu.Unlock()
			p.calls = append(p.calls, took)
			p.callEvts += len(evs)
			for _, e := range evs {
				p.published[eventKey(e)] = now
			}
		},
	}})
	require.NoError(b, err)
	inbox, err := postgres.NewInbox(pool, &postgres.InboxConfig{Logger: logger})
	require.NoError(b, err)
	router, err := eventbus.NewRouter(client, reg, &eventbus.RouterConfig{Logger: logger, DeadLetterTopic: deadLetters})
	require.NoError(b, err)
	const insertEffect = `INSERT INTO effects (event_id, ticket, seat) VALUES ($1, $2, $3)`
	exec := os.Getenv("BENCH_E2E_WRITE") == "exec"
	require.NoError(b, eventbus.HandleOnce(router, "effects", inbox, func(ctx context.Context, e ticketSold, env aggregate.Envelope) error {
		if exec {
			tx, ok := postgres.TxFromContext(ctx)
			if !ok {
				return errors.New("no transaction in the handler's context")
			}
			if _, err := tx.Exec(ctx, insertEffect, env.ID, env.AggregateID, e.Seat); err != nil {
				return err
			}
		} else if err := postgres.QueueExec(ctx, insertEffect, env.ID, env.AggregateID, e.Seat); err != nil {
			return err
		}
		key := eventKey(env)
		p.mu.Lock()
		_, again := p.handled[key]
		if !again {
			p.handled[key] = time.Now()
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
	p.send(ctx, b, "warm-up", 1)
	p.wait(b, 60*time.Second)
	return p
}

// send runs the command selling seats seats of ticket id and records
// when it returned (its unit of work committed).
func (p *pipeline) send(ctx context.Context, b *testing.B, id string, seats int) {
	if _, err := cqrs.Send[struct{}](ctx, p.bus, sellTicket{ID: id, Seats: seats}); err != nil {
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
	// Sized up front: growing them by rehashing cost the benchmark's own
	// process about 4% of its CPU in a 60,000-event run.
	p.committed, p.published, p.handled = make(map[string]time.Time, n), make(map[string]time.Time, n), make(map[string]time.Time, n)
	p.calls, p.callEvts = nil, 0
	p.count.Store(0)
	p.done = make(chan struct{})
	p.want.Store(int64(n))
}

func (p *pipeline) wait(b *testing.B, timeout time.Duration) {
	deadline := time.After(timeout)
	select {
	case <-p.done:
	case <-deadline:
		b.Fatalf("handled %d of %d events in %s", p.count.Load(), p.want.Load(), timeout)
	}
	// The consumer can handle an event before the relay's publish call
	// for it has returned (and its hook recorded it as published).
	for {
		p.mu.Lock()
		published := len(p.published)
		p.mu.Unlock()
		if int64(published) >= p.want.Load() {
			return
		}
		select {
		case <-time.After(time.Millisecond):
		case <-deadline:
			b.Fatalf("all %[2]d events handled, %[1]d of them recorded as published by the relay in %[3]s", published, p.want.Load(), timeout)
		}
	}
}

// latencies returns, sorted, for every event: commit → handled, and its
// two stages commit → published (the relay) and published → handled
// (Kafka and the consumer).
func (p *pipeline) latencies(b *testing.B) (total, relay, consume []time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, h := range p.handled {
		ticket, _, _ := strings.Cut(key, "/")
		c, ok := p.committed[ticket]
		require.True(b, ok, "event %s handled but its command not recorded", key)
		pub, ok := p.published[key]
		require.True(b, ok, "event %s handled but not recorded as published", key)
		total = append(total, max(h.Sub(c), 0))
		relay = append(relay, max(pub.Sub(c), 0))
		consume = append(consume, max(h.Sub(pub), 0))
	}
	for _, d := range [][]time.Duration{total, relay, consume} {
		slices.Sort(d)
	}
	return total, relay, consume
}

// reportPublishCalls reports the relay's publish calls of the last run:
// how long they took (p50, p99) and how many events they carried on
// average.
func (p *pipeline) reportPublishCalls(b *testing.B) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) == 0 {
		return
	}
	slices.Sort(p.calls)
	b.ReportMetric(pct(p.calls, 0.50), "publish_p50_ms")
	b.ReportMetric(pct(p.calls, 0.99), "publish_p99_ms")
	b.ReportMetric(float64(p.callEvts)/float64(len(p.calls)), "events/publish")
}

func pct(d []time.Duration, p float64) float64 {
	return float64(d[int(float64(len(d)-1)*p)]) / float64(time.Millisecond)
}

// BenchmarkPipeline measures a service's whole event path: commands on
// the cqrs bus (retry and unit of work middleware) each create an
// aggregate with BENCH_E2E_EVENTS_PER_COMMAND events (default 1) through
// the PostgreSQL repository (state row + outbox rows in one
// transaction); the outbox relay publishes the events to Kafka through
// the client's producer; a HandleOnce consumer with the PostgreSQL inbox
// inserts a row per event in the inbox's transaction.
//
// "throughput" sends BENCH_E2E_EVENTS events (default 20,000) in
// commands from BENCH_E2E_WORKERS goroutines (default 16) as fast as they
// go and reports events/s from the first command to the last event
// handled. "latency_1000_per_s" sends 1,000 events/s (BENCH_E2E_RATE) for
// BENCH_E2E_SECONDS (default 5) from BENCH_E2E_RATE_WRITERS goroutines
// (default 32, each on its own schedule), after BENCH_E2E_WARMUP_SECONDS
// at that rate that are not measured (default 2; 0 for none), and
// reports commit → handled in ms (p50, p99, max): from the return of the
// command (its transaction committed) to the handler having written its
// row (its transaction commits right after), and the two stages of it:
// commit → published (relay_) and published → handled (consume_). The
// topic has BENCH_E2E_PARTITIONS partitions (default 8). With
// BENCH_E2E_UNIT=off the commands run without the unit of work
// middleware: the repository's save commits on its own (one round trip
// either way: in a unit, the save goes with the COMMIT). BENCH_E2E_INFLIGHT and BENCH_E2E_BATCH set the
// relay's MaxInFlight and BatchSize (0, the default: the relay's
// defaults), BENCH_E2E_LINGER_US the producer's linger in µs
// (Producer.Flush.Frequency; unset: 0, the producer's default). Both also
// report the relay's publish calls: how long they took (publish_p50_ms,
// publish_p99_ms) and how many events each carried (events/publish).
//
// "raw-pgx-commits" is the ceiling the database sets on this machine:
// BENCH_E2E_WORKERS goroutines run the same write by hand (BEGIN, an
// INSERT into the state table, one INSERT of the command's events into
// the outbox, COMMIT) with nothing else running: commands/s, and
// events/s with BENCH_E2E_EVENTS_PER_COMMAND events each.
//
//	scripts/testenv.sh go test -run '^$' -bench BenchmarkPipeline -benchtime 1x -count 3 ./internal/e2ebench/
func BenchmarkPipeline(b *testing.B) {
	kafkatest.Brokers(b)
	perCommand := envInt("BENCH_E2E_EVENTS_PER_COMMAND", 1)
	workers := envInt("BENCH_E2E_WORKERS", 16)
	b.Run("raw-pgx-commits", func(b *testing.B) { benchRawCommits(b, workers, perCommand) })
	b.Run("throughput", func(b *testing.B) {
		p := newPipeline(b)
		commands := max(envInt("BENCH_E2E_EVENTS", 20_000)/perCommand, 1)
		n := commands * perCommand
		ctx := context.Background()
		var (
			elapsed time.Duration
			cpu     testinfra.CPU
		)
		for i := range b.N {
			p.expect(n)
			cpu0 := testinfra.ReadCPU()
			start := time.Now()
			sent := runCommands(workers, commands, "t"+strconv.Itoa(i), func(id string) bool {
				p.send(ctx, b, id, perCommand)
				return true
			})
			p.wait(b, 10*time.Minute)
			elapsed += time.Since(start)
			cpu = cpu.Add(testinfra.ReadCPU().Since(cpu0))
			b.ReportMetric(float64(commands)/sent.Seconds(), "commands/s")
		}
		lat, _, _ := p.latencies(b)
		b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "events/s")
		cpu.Report(b, n*b.N)
		testinfra.ReportSpeedRef(b)
		b.ReportMetric(pct(lat, 0.50), "p50_ms")
		b.ReportMetric(pct(lat, 0.99), "p99_ms")
		p.reportPublishCalls(b)
		b.ReportMetric(0, "ns/op")
	})
	rate := envInt("BENCH_E2E_RATE", 1000) // events/s
	b.Run("latency_"+strconv.Itoa(rate)+"_per_s", func(b *testing.B) {
		p := newPipeline(b)
		// Enough writers that one slow command does not hold the rate up.
		writers := envInt("BENCH_E2E_RATE_WRITERS", 32)
		seconds := envInt("BENCH_E2E_SECONDS", 5)
		commandRate := max(rate/perCommand, 1)
		writers = min(writers, commandRate)
		ctx := context.Background()
		interval := time.Second * time.Duration(writers) / time.Duration(commandRate)
		// atRate sends commandRate commands/s for seconds and waits until
		// their events are handled; it returns how many commands were
		// sent more than one writer's interval behind schedule.
		atRate := func(seconds int, prefix string) int64 {
			perWriter := commandRate * seconds / writers
			p.expect(perWriter * writers * perCommand)
			prefix += "-" + dddkittest.UniqueSuffix() + "-"
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
						p.send(ctx, b, prefix+strconv.Itoa(w)+"-"+strconv.Itoa(k), perCommand)
					}
				})
			}
			wg.Wait()
			p.wait(b, 2*time.Minute)
			return late.Load()
		}
		// The steady state is measured: a service's pool has its
		// connections and their prepared statements, its producer and
		// consumers their partitions. Opening them all at once costs a
		// burst of CPU that sets the p99 of a 5-second run by itself.
		warmUp := 2
		if v, err := strconv.Atoi(os.Getenv("BENCH_E2E_WARMUP_SECONDS")); err == nil && v >= 0 {
			warmUp = v
		}
		if warmUp > 0 {
			atRate(warmUp, "warm-up")
		}
		var all, relay, consume []time.Duration
		for i := range b.N {
			late := atRate(seconds, "l"+strconv.Itoa(i))
			t, r, c := p.latencies(b)
			all, relay, consume = append(all, t...), append(relay, r...), append(consume, c...)
			// Commands sent more than one writer's interval behind
			// schedule: the producer side could not keep up the rate.
			b.ReportMetric(float64(late), "late_sends")
		}
		for _, d := range [][]time.Duration{all, relay, consume} {
			slices.Sort(d)
		}
		b.ReportMetric(pct(all, 0.50), "p50_ms")
		b.ReportMetric(pct(all, 0.99), "p99_ms")
		b.ReportMetric(float64(all[len(all)-1])/float64(time.Millisecond), "max_ms")
		b.ReportMetric(pct(relay, 0.50), "relay_p50_ms")
		b.ReportMetric(pct(relay, 0.99), "relay_p99_ms")
		b.ReportMetric(pct(consume, 0.50), "consume_p50_ms")
		b.ReportMetric(pct(consume, 0.99), "consume_p99_ms")
		p.reportPublishCalls(b)
		b.ReportMetric(0, "ns/op")
	})
}

// benchRawCommits is the "raw-pgx-commits" baseline: the pipeline's
// write by hand, in the dddkit tables of a schema of its own, with
// nothing else running.
func benchRawCommits(b *testing.B, workers, perCommand int) {
	ctx := context.Background()
	dbURL, _ := pgtest.SchemaURL(b)
	cfg, err := pgxpool.ParseConfig(dbURL)
	require.NoError(b, err)
	cfg.MaxConns = int32(workers)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	require.NoError(b, postgres.Migrate(ctx, pool, nil))
	commands := max(envInt("BENCH_E2E_EVENTS", 20_000)/perCommand, 1)
	payload := []byte(`{"seat":1}`)
	command := func(id string) error {
		tx, err := pool.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `INSERT INTO aggregates (type, id, version, state) VALUES ('ticket', $1, $2, $3)`,
			id, perCommand, payload); err != nil {
			return err
		}
		// The command's events in one statement, as the repository
		// writes them.
		ids := make([]string, perCommand)
		versions := make([]int64, perCommand)
		for v := range perCommand {
			ids[v], versions[v] = id+"/"+strconv.Itoa(v+1), int64(v+1)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO dddkit_outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_name, payload, occurred_at)
SELECT e, 'ticket', $2, v, 'bench.ticket_sold', $4, now() FROM unnest($1::text[], $3::bigint[]) AS u(e, v)`, ids, id, versions, payload); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	var elapsed time.Duration
	for i := range b.N {
		elapsed += runCommands(workers, commands, "r"+strconv.Itoa(i), func(id string) bool {
			if err := command(id); err != nil {
				b.Error(err)
				return false
			}
			return true
		})
	}
	b.ReportMetric(float64(commands*b.N)/elapsed.Seconds(), "commands/s")
	b.ReportMetric(float64(commands*perCommand*b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

// runCommands runs run for commands IDs (prefix, a unique suffix and a
// number) from workers goroutines, as fast as they go; a worker stops
// when run returns false. It returns how long they took.
func runCommands(workers, commands int, prefix string, run func(id string) bool) time.Duration {
	prefix += "-" + dddkittest.UniqueSuffix() + "-"
	var next atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := int(next.Add(1)); k <= commands; k = int(next.Add(1)) {
				if !run(prefix + strconv.Itoa(k)) {
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
