package postgres_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
)

// BenchmarkShardedRelay measures events/s from a committed backlog
// (BENCH_OUTBOX_EVENTS, default 100,000; 20 events per aggregate) to
// Kafka acknowledgement:
//   - leaders=1: one relay, leading every shard (the default outbox);
//   - leaders=1,shards=4: one relay of an outbox of 4 shards, leading
//     them all (a service ready to scale out, on one replica);
//   - leaders=4: four relays in this process (an Outbox each, Shards 4,
//     one shard each once they have rebalanced), sharing the pool and
//     the one kafka.Client producer;
//   - processes=2: two relays in child processes (16 shards, 8 each),
//     measured until the backlog is gone, process start included.
//   - leaders=1,running and leaders=4,running: leaders=1 and leaders=4
//     with relays started on the empty outbox, each leading its share,
//     before the backlog is committed in one transaction (the clock
//     starts at its COMMIT): replicas of a service that has run for a
//     while, met by a burst.
//
// The other cases start their relays on the whole backlog: the time
// includes the rebalancing among them. The leaders cases publish to a topic
// warmed before the clock starts (warmTopic) and also report
// steady-events/s, the rate from 10% to 90% of the backlog published:
// without the start (statements prepared, shards taken and handed over)
// and the end (the relay of the largest shard finishing alone), which
// weigh on a backlog relayed in under a second.
// BENCH_RELAY_BATCH sets the relays' BatchSize (unset: the default).
func BenchmarkShardedRelay(b *testing.B) {
	b.Run("leaders=1", func(b *testing.B) { benchShardedInProcess(b, 1, 1, false) })
	b.Run("leaders=1,shards=4", func(b *testing.B) { benchShardedInProcess(b, 1, 4, false) })
	b.Run("leaders=4", func(b *testing.B) { benchShardedInProcess(b, 4, 4, false) })
	b.Run("leaders=1,running", func(b *testing.B) { benchShardedInProcess(b, 1, 1, true) })
	b.Run("leaders=4,running", func(b *testing.B) { benchShardedInProcess(b, 4, 4, true) })
	b.Run("processes=2", benchShardedProcesses)
}

// shardBacklog returns a bundle whose outbox holds the benchmark's
// backlog, on a topic of its own.
func shardBacklog(b *testing.B, cfg *postgres.OutboxConfig) (*outboxBundle, int) {
	bb := newOutboxBundle(b, cfg)
	bb.useTopic(b, kafkatest.Topic(b, 12))
	n := writeBacklog(b, bb, bb.pool)
	return bb, n
}

// writeBacklog writes the benchmark's backlog to bb's outbox through db
// (the pool, or a transaction) and analyzes it there.
func writeBacklog(b *testing.B, bb *outboxBundle, db postgres.DB) int {
	n := benchEvents()
	ob, err := postgres.NewOutbox(db, bb.reg, nil)
	require.NoError(b, err)
	for chunk := range slices.Chunk(cartHistory(n/20, 20), 1000) {
		require.NoError(b, ob.Write(context.Background(), chunk...))
	}
	// Statistics, as autovacuum keeps them in a service (and as
	// BenchmarkRelayThroughput has them): without, the planner takes
	// the backlog for a few rows.
	_, err = db.Exec(context.Background(), `ANALYZE dddkit_outbox`)
	require.NoError(b, err)
	return n / 20 * 20
}

// benchShardedInProcess relays the backlog with relays relays of an
// outbox of shards shards in this process; running starts them before
// the backlog is committed.
func benchShardedInProcess(b *testing.B, relays, shards int, running bool) {
	brokers := kafkatest.Brokers(b)
	var (
		total, steady time.Duration
		events        int
		cpu           testinfra.CPU
	)
	for range b.N {
		cfg := &postgres.OutboxConfig{Shards: shards, LeaderPollInterval: 50 * time.Millisecond}
		var (
			bb *outboxBundle
			n  = benchEvents() / 20 * 20
		)
		if running {
			bb = newOutboxBundle(b, cfg)
			bb.useTopic(b, kafkatest.Topic(b, 12))
		} else {
			bb, n = shardBacklog(b, cfg)
		}
		events += n
		warmTopic(b, brokers, bb.reg.Topic("cart"))
		pub := newKafkaPublisher(b, brokers)
		// Its connection and the topic's metadata.
		require.NoError(b, pub.Publish(bb.reg.Topic("cart"), message.NewMessage("warm", []byte("{}"))))
		var (
			done         atomic.Int64
			tenth, ninth atomic.Int64 // when 10% and 90% of n were published (Unix ns)
		)
		finished := make(chan struct{})
		ctx, cancel := context.WithCancel(context.Background())
		runs := make(chan struct{}, relays)
		var (
			cpu0  testinfra.CPU
			start time.Time
		)
		if !running {
			cpu0, start = testinfra.ReadCPU(), time.Now()
		}
		obs := make([]*postgres.Outbox, relays)
		for i := range relays {
			obs[i] = bb.open(b, cfg)
			relay, err := outbox.NewRelay(obs[i], pub, bb.reg, &outbox.RelayConfig{
				BatchSize: relayBatch(), // 0: the default
				Hooks: outbox.Hooks{OnPublished: func(evs []aggregate.Envelope, _ time.Duration) {
					d := done.Add(int64(len(evs)))
					if d >= int64(n)/10 && tenth.Load() == 0 {
						tenth.CompareAndSwap(0, time.Now().UnixNano())
					}
					if d >= int64(n)*9/10 && ninth.Load() == 0 {
						ninth.CompareAndSwap(0, time.Now().UnixNano())
					}
					if d == int64(n) {
						close(finished)
					}
				}},
			})
			require.NoError(b, err)
			go func() {
				defer func() { runs <- struct{}{} }()
				_ = relay.Run(ctx)
			}()
		}
		if running {
			// Each relay leads its share, then the backlog comes at once.
			require.Eventually(b, func() bool {
				for _, ob := range obs {
					if len(ob.Shards()) != shards/relays {
						return false
					}
				}
				return true
			}, 30*time.Second, 5*time.Millisecond, "the relays did not take a share each")
			tx, err := bb.pool.Begin(context.Background())
			require.NoError(b, err)
			require.Equal(b, n, writeBacklog(b, bb, tx))
			cpu0, start = testinfra.ReadCPU(), time.Now()
			require.NoError(b, tx.Commit(context.Background()))
		}
		select {
		case <-finished:
		case <-time.After(5 * time.Minute):
			b.Fatalf("relayed %d of %d in 5 minutes", done.Load(), n)
		}
		total += time.Since(start)
		steady += time.Duration(ninth.Load() - tenth.Load())
		cpu = cpu.Add(testinfra.ReadCPU().Since(cpu0))
		cancel()
		for range relays {
			<-runs
		}
	}
	b.ReportMetric(float64(events)/total.Seconds(), "events/s")
	b.ReportMetric(float64(events)*8/10/steady.Seconds(), "steady-events/s")
	cpu.Report(b, events)
	testinfra.ReportSpeedRef(b)
	b.ReportMetric(0, "ns/op")
}

func benchShardedProcesses(b *testing.B) {
	brokers := kafkatest.Brokers(b)
	var total time.Duration
	var events int
	for range b.N {
		bb, n := shardBacklog(b, nil)
		events += n
		topic := bb.reg.Topic("cart")
		logPath := filepath.Join(b.TempDir(), "children.log")
		env := []string{envChildSchema + "=" + bb.schema, envChildBrokers + "=" + brokers[0], envChildTopic + "=" + topic}
		start := time.Now()
		children := []*testinfra.Child{startChild(b, logPath, env...), startChild(b, logPath, env...)}
		ctx := context.Background()
		for {
			var pending bool
			require.NoError(b, bb.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM dddkit_outbox WHERE status = 'pending')`).Scan(&pending))
			if !pending {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatal("the backlog was not relayed in 5 minutes")
			}
			time.Sleep(10 * time.Millisecond)
		}
		total += time.Since(start)
		for _, c := range children {
			require.NoError(b, c.Stop(syscall.SIGTERM))
		}
	}
	b.ReportMetric(float64(events)/total.Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}
