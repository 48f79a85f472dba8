package postgres_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	metrics "github.com/rcrowley/go-metrics"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/internal/telemetry/telemetrytest"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
)

// benchEvents is the backlog size of the throughput benchmarks; 100,000
// unless BENCH_OUTBOX_EVENTS says otherwise.
func benchEvents() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_OUTBOX_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 100_000
}

// relayBatch is RelayConfig.BatchSize of the relay throughput
// benchmarks: BENCH_RELAY_BATCH, or 0 for the default.
func relayBatch() int {
	n, _ := strconv.Atoi(os.Getenv("BENCH_RELAY_BATCH"))
	return max(n, 0)
}

// BenchmarkCommitToKafkaAck measures the latency from the commit of a
// transaction (COMMIT returned) to the Kafka acknowledgement of its event
// (the publish call returned), at a steady 1,000 events/s (one event per
// transaction, four writers) for five seconds. It reports p50, p99 and max
// in milliseconds, the p99 and max of the publish calls alone, and the mean
// number of events per published batch.
func BenchmarkCommitToKafkaAck(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	const rate, seconds = 1000, 5
	var all, pubs []time.Duration
	for range b.N {
		bb := newOutboxBundle(b, nil)
		bb.useTopic(b, kafkatest.Topic(b, 6))
		uow, err := postgres.NewUnitOfWork(bb.pool)
		require.NoError(b, err)
		pub := newKafkaPublisher(b, brokers)
		var (
			committed, acked sync.Map // event ID → time
			mu               sync.Mutex
			took             []time.Duration
			count            atomic.Int64
			measuring        atomic.Bool
		)
		relay, err := outbox.NewRelay(bb.ob, pub, bb.reg, &outbox.RelayConfig{
			Hooks: outbox.Hooks{OnPublished: func(evs []aggregate.Envelope, d time.Duration) {
				now := time.Now()
				for _, e := range evs {
					acked.Store(e.ID, now)
				}
				count.Add(int64(len(evs)))
				if measuring.Load() {
					mu.Lock()
					took = append(took, d)
					mu.Unlock()
				}
			}},
		})
		require.NoError(b, err)
		stop := startRelay(b, relay)
		testinfra.Eventually(b, 10*time.Second, relay.IsLeader, "relay leads")
		// Warm the producer's connection and metadata.
		bb.write(b, cartEvent("warm", 1))
		testinfra.Eventually(b, 10*time.Second, func() bool { return count.Load() == 1 }, "warm-up published")
		measuring.Store(true)

		const writers = 4
		start := time.Now().Add(10 * time.Millisecond)
		interval := time.Second * writers / rate
		var wg sync.WaitGroup
		ctx := context.Background()
		for w := range writers {
			wg.Go(func() {
				for i := range rate * seconds / writers {
					at := start.Add(time.Duration(i)*interval + time.Duration(w)*interval/writers)
					time.Sleep(time.Until(at))
					env := cartEvent("w"+strconv.Itoa(w), int64(i+1))
					require.NoError(b, uow.Do(ctx, func(ctx context.Context) error { return bb.ob.Write(ctx, env) }))
					committed.Store(env.ID, time.Now())
				}
			})
		}
		wg.Wait()
		testinfra.Eventually(b, 30*time.Second, func() bool { return count.Load() == 1+rate*seconds }, "all acknowledged")
		stop()
		committed.Range(func(id, c any) bool {
			a, ok := acked.Load(id)
			require.True(b, ok)
			all = append(all, max(a.(time.Time).Sub(c.(time.Time)), 0))
			return true
		})
		pubs = append(pubs, took...)
	}
	slices.Sort(all)
	slices.Sort(pubs)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[int(float64(len(d)-1)*p)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(all, 0.50), "p50_ms")
	b.ReportMetric(pct(all, 0.99), "p99_ms")
	b.ReportMetric(float64(all[len(all)-1])/float64(time.Millisecond), "max_ms")
	b.ReportMetric(pct(pubs, 0.99), "publish_p99_ms")
	b.ReportMetric(float64(pubs[len(pubs)-1])/float64(time.Millisecond), "publish_max_ms")
	b.ReportMetric(float64(len(all))/float64(len(pubs)), "events/batch")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRelayThroughput measures events/s from a committed backlog to
// Kafka acknowledgement: dddkit's relay with the batching Kafka publisher
// against watermill's forwarder (watermill-sql publisher inside the
// transaction, forwarder component, watermill-kafka publisher). Both start
// from the same number of committed events, written 1,000 per
// transaction, with the same acks=all, idempotent Kafka settings.
//
// The baseline is a raw sarama async producer with the same safety
// settings (acks=all, idempotent, one request in flight per connection)
// sending the same number of messages, keyed by aggregate ID with the
// relay's headers and payloads, built before the clock starts: what the
// producer path can carry. "dddkit" is the relay with its defaults
// (MaxInFlight 2), "dddkit-one-batch" publishes one batch at a time
// (MaxInFlight 1), "dddkit-4" keeps up to 4 in flight.
func BenchmarkRelayThroughput(b *testing.B) {
	b.Run("raw-sarama-async", benchRawSarama)
	b.Run("dddkit", func(b *testing.B) { benchDDDKitRelay(b, 0) })
	// The relay's PostgreSQL side and its own work alone: a publisher
	// that acknowledges every call at once, no broker.
	b.Run("dddkit-no-broker", func(b *testing.B) { relayThroughput(b, relayCase{noBroker: true}) })
	b.Run("dddkit-one-batch", func(b *testing.B) { benchDDDKitRelay(b, 1) })
	b.Run("dddkit-4", func(b *testing.B) { benchDDDKitRelay(b, 4) })
	b.Run("watermill-forwarder", benchForwarder)
}

func benchRawSarama(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	n := benchEvents()
	var (
		total   time.Duration
		cpu     testinfra.CPU
		batches testinfra.Batches
	)
	for range b.N {
		topic := kafkatest.Topic(b, 6)
		warmTopic(b, brokers, topic)
		msgs := make([]*sarama.ProducerMessage, 0, n)
		for _, env := range cartHistory(n/20, 20) {
			payload, err := json.Marshal(env.Payload)
			require.NoError(b, err)
			m := wire.ToMessage(env, "urn:dddkit:test", payload, 1)
			headers := make([]sarama.RecordHeader, 0, len(m.Metadata))
			for k, v := range m.Metadata {
				headers = append(headers, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
			}
			msgs = append(msgs, &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(env.AggregateID),
				Value: sarama.ByteEncoder(payload), Headers: headers, Timestamp: env.OccurredAt})
		}
		rawConfig := testinfra.RawProducerConfig(kafkatest.Version)
		ap, err := sarama.NewAsyncProducer(brokers, rawConfig)
		require.NoError(b, err)
		// Warm the connection and the topic's metadata.
		ap.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("warm"), Value: sarama.StringEncoder("{}")}
		select {
		case <-ap.Successes():
		case perr := <-ap.Errors():
			b.Fatal(perr)
		}
		sent0 := testinfra.ProducerBatches(rawConfig.MetricRegistry)
		cpu0 := testinfra.ReadCPU()
		start := time.Now()
		go func() {
			for _, m := range msgs {
				ap.Input() <- m
			}
		}()
		for range n {
			select {
			case <-ap.Successes():
			case perr := <-ap.Errors():
				b.Fatal(perr)
			}
		}
		total += time.Since(start)
		cpu = cpu.Add(testinfra.ReadCPU().Since(cpu0))
		batches = batches.Add(testinfra.ProducerBatches(rawConfig.MetricRegistry).Since(sent0))
		require.NoError(b, ap.Close())
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "events/s")
	cpu.Report(b, n*b.N)
	batches.Report(b)
	testinfra.ReportSpeedRef(b)
	b.ReportMetric(0, "ns/op")
}

// benchDDDKitRelay relays with RelayConfig.MaxInFlight maxInFlight (0:
// the default).
func benchDDDKitRelay(b *testing.B, maxInFlight int) {
	relayThroughput(b, relayCase{maxInFlight: maxInFlight})
}

// BenchmarkRelayTracing is the relay's throughput with tracing off (no
// tracer provider installed), with a no-op provider installed, and with
// the OpenTelemetry SDK sampling every span (one span per publisher call,
// linked to each event's trace). Every event carries a traceparent, in
// every mode, as events recorded with tracing on do.
//
//	scripts/testenv.sh go test -run='^$' -bench=RelayTracing -benchtime=1x -count=3 ./postgres/
func BenchmarkRelayTracing(b *testing.B) {
	for _, mode := range telemetrytest.Modes {
		b.Run(mode, func(b *testing.B) {
			telemetrytest.Use(b, mode)
			relayThroughput(b, relayCase{traced: true})
		})
	}
}

// BenchmarkRelayOneAggregate measures how fast the relay publishes the
// events of one aggregate: a backlog of 1,000 events of each of 1, 10 or
// 100 aggregates (interleaved, as commands on them would write them),
// relayed to Kafka with the relay's defaults. A publisher call never
// carries two events of one aggregate (see the outbox package's
// documentation), so an aggregate's events leave one acknowledged call
// after another: the time per event of an aggregate
// (ms/event-of-an-aggregate) is about a round trip to the broker (and
// the producer's linger, if it has one), with more aggregates beside it
// a little more, as each call carries an event of each.
//
//	scripts/testenv.sh go test -run='^$' -bench=RelayOneAggregate -benchtime=1x -count=3 ./postgres/
func BenchmarkRelayOneAggregate(b *testing.B) {
	const perAggregate = 1000
	for _, aggregates := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("aggregates=%d", aggregates), func(b *testing.B) {
			rate := relayThroughput(b, relayCase{events: aggregates * perAggregate, perAggregate: perAggregate})
			b.ReportMetric(1000/(rate/float64(aggregates)), "ms/event-of-an-aggregate")
		})
	}
}

// relayCase is what relayThroughput relays, and how.
type relayCase struct {
	maxInFlight int  // RelayConfig.MaxInFlight (0: the default)
	traced      bool // every event has a traceparent
	noBroker    bool // a publisher that acknowledges at once, not Kafka
	// The backlog: events events (0: benchEvents()) of perAggregate
	// events per aggregate (0: 20), written by version, 1,000 per
	// transaction.
	events, perAggregate int
}

// relayThroughput measures the relay publishing the backlog of c to
// Kafka, and returns the events/s it reported.
func relayThroughput(b *testing.B, c relayCase) float64 {
	var brokers []string
	if !c.noBroker {
		brokers = kafkatest.Brokers(b)
	}
	per := cmp.Or(c.perAggregate, 20)
	n := cmp.Or(c.events, benchEvents()) / per * per
	var (
		total   time.Duration
		cpu     testinfra.CPU
		batches testinfra.Batches
	)
	for range b.N {
		bb := newOutboxBundle(b, nil)
		topic := "no-broker"
		if !c.noBroker {
			topic = kafkatest.Topic(b, 6)
			warmTopic(b, brokers, topic)
		}
		bb.useTopic(b, topic)
		for chunk := range slices.Chunk(cartHistory(n/per, per), 1000) {
			if c.traced {
				for i := range chunk {
					chunk[i].Metadata.TraceParent = fmt.Sprintf("00-%032x-%016x-01", i+1, i+1)
				}
			}
			bb.write(b, chunk...)
		}
		// Statistics, as a table in service has them: without, the
		// planner takes the backlog for a few rows and every fetch reads
		// and sorts all of it.
		// BENCH_OUTBOX_ANALYZE=0 leaves them out: the backlog of a new
		// table, or of a burst autovacuum has not analyzed yet.
		if os.Getenv("BENCH_OUTBOX_ANALYZE") != "0" {
			_, err := bb.pool.Exec(context.Background(), `ANALYZE dddkit_outbox`)
			require.NoError(b, err)
		}
		var (
			pub     message.Publisher = acknowledger{}
			metered metrics.Registry  // nil without a broker: no records sent
		)
		if !c.noBroker {
			pub, metered = newMeteredPublisher(b, brokers)
			// Warm the connection and the topic's metadata, as the raw
			// sarama producer's run does before its clock starts.
			require.NoError(b, pub.Publish(topic, message.NewMessage("warm", []byte("{}"))))
		}
		sent0 := testinfra.ProducerBatches(metered)
		finished := make(chan struct{})
		counter := &counting{pub: pub.(eventPublisher), want: int64(n), finished: finished}
		relay, err := outbox.NewRelay(bb.ob, counter, bb.reg, &outbox.RelayConfig{
			MaxInFlight: c.maxInFlight,
			BatchSize:   relayBatch(), // 0: the default
		})
		require.NoError(b, err)
		ctx, cancel := context.WithCancel(context.Background())
		cpu0 := testinfra.ReadCPU()
		start := time.Now()
		runDone := make(chan struct{})
		go func() {
			defer close(runDone)
			_ = relay.Run(ctx)
		}()
		select {
		case <-finished:
		case <-time.After(5 * time.Minute):
			b.Fatalf("relayed %d of %d in 5 minutes", counter.done.Load(), n)
		}
		total += time.Since(start)
		cpu = cpu.Add(testinfra.ReadCPU().Since(cpu0))
		batches = batches.Add(testinfra.ProducerBatches(metered).Since(sent0))
		cancel()
		<-runDone
	}
	rate := float64(n*b.N) / total.Seconds()
	b.ReportMetric(rate, "events/s")
	cpu.Report(b, n*b.N)
	batches.Report(b)
	testinfra.ReportSpeedRef(b)
	b.ReportMetric(0, "ns/op")
	return rate
}

// eventPublisher is a publisher the relay hands events to directly: the
// kafka package's, or acknowledger.
type eventPublisher interface {
	message.Publisher
	wire.EventPublisher
}

// counting is the relay throughput benchmarks' publisher: pub, counting
// the events it acknowledged and closing finished once they are want.
// (Counting in Hooks.OnPublished would add the hook's copy of every
// envelope, a cost of the benchmark's, to the relay's.)
type counting struct {
	pub      eventPublisher
	done     atomic.Int64
	want     int64
	finished chan struct{}
}

func (c *counting) add(n int) {
	if c.done.Add(int64(n)) == c.want {
		close(c.finished)
	}
}

func (c *counting) Publish(topic string, msgs ...*message.Message) error {
	if err := c.pub.Publish(topic, msgs...); err != nil {
		return err
	}
	c.add(len(msgs))
	return nil
}

func (c *counting) PublishEvents(ctx context.Context, topic, source string, evs []wire.Event) error {
	if err := c.pub.PublishEvents(ctx, topic, source, evs); err != nil {
		return err
	}
	c.add(len(evs))
	return nil
}

func (c *counting) Close() error { return nil }

// acknowledger is a publisher that acknowledges every call at once. It
// implements wire.EventPublisher, so the relay calls it as it calls the
// kafka package's publisher; no records are built.
type acknowledger struct{}

func (acknowledger) Publish(string, ...*message.Message) error { return nil }
func (acknowledger) Close() error                              { return nil }
func (acknowledger) PublishEvents(context.Context, string, string, []wire.Event) error {
	return nil
}

func benchForwarder(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	n := benchEvents()
	var total time.Duration
	for range b.N {
		pool := pgtest.Pool(b)
		topic := kafkatest.Topic(b, 6)
		const fwdTopic = "outbox"
		schema := wsql.DefaultPostgreSQLSchema{}
		sub, err := wsql.NewSubscriber(wsql.BeginnerFromPgx(pool), wsql.SubscriberConfig{
			ConsumerGroup: "bench", SchemaAdapter: schema, OffsetsAdapter: wsql.DefaultPostgreSQLOffsetsAdapter{},
			InitializeSchema: true, PollInterval: 10 * time.Millisecond,
		}, watermill.NopLogger{})
		require.NoError(b, err)
		require.NoError(b, sub.SubscribeInitialize(fwdTopic))

		// The backlog: each event published into the SQL table inside
		// the writing transaction, wrapped for the forwarder.
		ctx := context.Background()
		for chunk := range slices.Chunk(cartHistory(n/20, 20), 1000) {
			require.NoError(b, pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				sqlPub, err := wsql.NewPublisher(wsql.TxFromPgx(tx), wsql.PublisherConfig{SchemaAdapter: schema}, watermill.NopLogger{})
				if err != nil {
					return err
				}
				msgs := make([]*message.Message, len(chunk))
				for i, env := range chunk {
					payload, err := json.Marshal(env.Payload)
					if err != nil {
						return err
					}
					msgs[i] = wire.ToMessage(env, "urn:dddkit:bench", payload, 1)
				}
				return forwarder.NewPublisher(sqlPub, forwarder.PublisherConfig{ForwarderTopic: fwdTopic}).Publish(topic, msgs...)
			}))
		}

		sc := wmkafka.DefaultSaramaSyncPublisherConfig()
		sc.Version = kafkatest.Version
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Producer.Idempotent = true
		sc.Net.MaxOpenRequests = 1
		// Keyed by aggregate ID, as dddkit's producer keys them.
		marshaler := wmkafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) {
			return m.Metadata.Get(wire.HeaderAggregateID), nil
		})
		kpub, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{Brokers: brokers, Marshaler: marshaler, OverwriteSaramaConfig: sc}, watermill.NopLogger{})
		require.NoError(b, err)
		counted := &countingPublisher{Publisher: kpub, target: int64(n), finished: make(chan struct{})}
		fwd, err := forwarder.NewForwarder(sub, counted, watermill.NopLogger{}, forwarder.Config{ForwarderTopic: fwdTopic})
		require.NoError(b, err)

		start := time.Now()
		runDone := make(chan struct{})
		go func() {
			defer close(runDone)
			_ = fwd.Run(context.Background())
		}()
		select {
		case <-counted.finished:
		case <-time.After(9 * time.Minute):
			b.Fatalf("forwarded %d of %d in 9 minutes", counted.n.Load(), n)
		}
		total += time.Since(start)
		require.NoError(b, fwd.Close())
		<-runDone
		require.NoError(b, sub.Close())
		require.NoError(b, kpub.Close())
	}
	b.ReportMetric(float64(n*b.N)/total.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}

type countingPublisher struct {
	message.Publisher
	n        atomic.Int64
	target   int64
	finished chan struct{}
}

func (c *countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := c.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	if c.n.Add(int64(len(msgs))) == c.target {
		close(c.finished)
	}
	return nil
}

// BenchmarkWrite compares Outbox.Write of two events in a unit of work
// with the same insert written by hand with pgx in a transaction: the
// outbox's share of the save cost.
func BenchmarkWrite(b *testing.B) {
	bb := newOutboxBundle(b, nil)
	uow, err := postgres.NewUnitOfWork(bb.pool)
	require.NoError(b, err)
	ctx := context.Background()
	b.Run("outbox", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			events := []aggregate.Envelope{cartEvent("s"+strconv.Itoa(i), 1), cartEvent("s"+strconv.Itoa(i), 2)}
			require.NoError(b, uow.Do(ctx, func(ctx context.Context) error { return bb.ob.Write(ctx, events...) }))
		}
	})
	b.Run("handwritten-pgx", func(b *testing.B) {
		b.ReportAllocs()
		const sql = `INSERT INTO dddkit_outbox (event_id, aggregate_type, aggregate_id, aggregate_version, event_name, event_version, payload, headers, occurred_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9), ($10, $11, $12, $13, $14, $15, $16, $17, $18)`
		for i := range b.N {
			e1, e2 := cartEvent("h"+strconv.Itoa(i), 1), cartEvent("h"+strconv.Itoa(i), 2)
			p1, _ := json.Marshal(e1.Payload)
			p2, _ := json.Marshal(e2.Payload)
			require.NoError(b, pgx.BeginFunc(ctx, bb.pool, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, sql,
					e1.ID, e1.AggregateType, e1.AggregateID, e1.Version, e1.Name, 1, p1, nil, e1.OccurredAt,
					e2.ID, e2.AggregateType, e2.AggregateID, e2.Version, e2.Name, 1, p2, nil, e2.OccurredAt)
				return err
			}))
		}
	})
}
