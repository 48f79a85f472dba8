package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/postgres"
)

// leadersOf returns the relay sessions on b's outbox.
func leadersOf(t testing.TB, b *outboxBundle) []postgres.Leader {
	t.Helper()
	ls, err := b.ob.Leaders(context.Background())
	require.NoError(t, err)
	return ls
}

// sharedBy reports whether relays relays lead every one of shards shards,
// each at least one and at most its fair share.
func sharedBy(ls []postgres.Leader, relays, shards int) bool {
	fair, total := (shards+relays-1)/relays, 0
	for _, l := range ls {
		if len(l.Shards) == 0 || len(l.Shards) > fair || l.ShardCount != shards {
			return false
		}
		total += len(l.Shards)
	}
	return len(ls) == relays && total == shards
}

// One relay alone leads every shard; relays that join take their share
// from it, and when one leaves the others take its shards back; a relay
// configured with another number of shards waits while these lead.
func TestShardsRebalanceAsRelaysJoinAndLeave(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	rec := &outboxtest.Recorder{}
	start := func(cfg *postgres.OutboxConfig) (*postgres.Outbox, func()) {
		ob := b.open(t, cfg)
		r, err := outbox.NewRelay(ob, rec, b.reg, &outbox.RelayConfig{PollInterval: 50 * time.Millisecond})
		require.NoError(t, err)
		return ob, startRelay(t, r)
	}
	first, stopFirst := start(nil)
	testinfra.Eventually(t, 30*time.Second, func() bool { return sharedBy(leadersOf(t, b), 1, 16) }, "one relay leads all: %+v", leadersOf(t, b))
	testinfra.Eventually(t, 30*time.Second, func() bool { return len(first.Shards()) == 16 }, "its Outbox reports the 16 shards (once it listens)")

	second, _ := start(nil)
	testinfra.Eventually(t, 30*time.Second, func() bool { return sharedBy(leadersOf(t, b), 2, 16) }, "two relays, 8 shards each: %+v", leadersOf(t, b))
	third, _ := start(nil)
	testinfra.Eventually(t, 30*time.Second, func() bool { return sharedBy(leadersOf(t, b), 3, 16) }, "three relays, at most 6 each: %+v", leadersOf(t, b))
	// Each Outbox's own view (Shards) follows its locks a moment later.
	testinfra.Eventually(t, 30*time.Second, func() bool {
		parts := [][]int{first.Shards(), second.Shards(), third.Shards()}
		union := slices.Concat(parts...)
		slices.Sort(union)
		return len(union) == 16 && len(slices.Compact(union)) == 16
	}, "each shard led once, by the relays' own account: %v %v %v", first.Shards(), second.Shards(), third.Shards())

	// Every aggregate's events go out, in order, while the relays share.
	b.write(t, cartHistory(50, 4)...)
	testinfra.Eventually(t, 30*time.Second, func() bool { return rec.Len() >= 200 }, "published: %d", rec.Len())

	// Another number of shards: it joins but takes nothing.
	other, stopOther := start(&postgres.OutboxConfig{Shards: 8})
	time.Sleep(300 * time.Millisecond) // six rebalance intervals
	require.Empty(t, other.Shards(), "a relay with 8 shards leads nothing while relays with 16 hold shards")
	stopOther()

	stopFirst()
	testinfra.Eventually(t, 30*time.Second, func() bool { return sharedBy(leadersOf(t, b), 2, 16) }, "the two left share all: %+v", leadersOf(t, b))

	check := outboxtest.NewOrderCheck()
	for _, m := range rec.Messages() {
		require.NoError(t, check.AddMessage(m.Message))
	}
	require.NoError(t, check.Complete(50, 4))
	require.Zero(t, check.Duplicates())
}

// Relays tell each other when one joins, hands shards over or leaves
// (a NOTIFY on the outbox's channel), and rebalance at once: with a
// LeaderPollInterval longer than the test, they share the shards through
// those notices only.
func TestShardsRebalanceOnNoticesWithoutPolling(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	cfg := &postgres.OutboxConfig{LeaderPollInterval: time.Hour}
	start := func() func() {
		r, err := outbox.NewRelay(b.open(t, cfg), &outboxtest.Recorder{}, b.reg, &outbox.RelayConfig{PollInterval: 50 * time.Millisecond})
		require.NoError(t, err)
		return startRelay(t, r)
	}
	stopFirst := start()
	testinfra.Eventually(t, 30*time.Second, func() bool { return sharedBy(leadersOf(t, b), 1, 16) }, "one relay leads all: %+v", leadersOf(t, b))
	start()
	testinfra.Eventually(t, 30*time.Second, func() bool { return sharedBy(leadersOf(t, b), 2, 16) }, "two relays, 8 shards each: %+v", leadersOf(t, b))
	start()
	testinfra.Eventually(t, 30*time.Second, func() bool { return sharedBy(leadersOf(t, b), 3, 16) }, "three relays: %+v", leadersOf(t, b))
	stopFirst()
	testinfra.Eventually(t, 30*time.Second, func() bool { return sharedBy(leadersOf(t, b), 2, 16) }, "the two left share all: %+v", leadersOf(t, b))
}

// Fetch and the marks run only inside Lead, on the lock connection, for
// rows this session fetched; otherwise they fail with ErrNotLeader.
func TestShardClaimsAndMarksNeedTheLead(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, &postgres.OutboxConfig{Shards: 4})
	ctx := context.Background()
	b.write(t, cartHistory(20, 2)...)

	_, err := b.ob.Fetch(ctx, 10, outbox.SeqRange{})
	require.ErrorIs(t, err, postgres.ErrNotLeader)
	require.ErrorIs(t, b.ob.MarkPublished(ctx, []int64{1}), postgres.ErrNotLeader)
	require.ErrorIs(t, b.ob.MarkAttempts(ctx, []outbox.Attempt{{Seq: 1, Attempts: 1, Err: "x"}}), postgres.ErrNotLeader)
	require.Nil(t, b.ob.Shards())

	require.NoError(t, b.ob.Lead(ctx, func(ctx context.Context, _ <-chan struct{}) error {
		require.Equal(t, []int{0, 1, 2, 3}, b.ob.Shards(), "alone, it leads every shard")
		got, err := b.ob.Fetch(ctx, 100, outbox.SeqRange{})
		require.NoError(t, err)
		require.Len(t, got, 40)
		require.ErrorIs(t, b.ob.MarkPublished(ctx, []int64{got[39].Seq + 1000}), postgres.ErrNotLeader, "a row it did not fetch")
		seqs := make([]int64, len(got))
		for i, p := range got {
			seqs[i] = p.Seq
		}
		require.NoError(t, b.ob.MarkPublished(ctx, seqs))
		require.ErrorIs(t, b.ob.MarkPublished(ctx, seqs[:1]), postgres.ErrNotLeader, "marked already")
		return nil
	}))
	_, err = b.ob.Fetch(ctx, 10, outbox.SeqRange{})
	require.ErrorIs(t, err, postgres.ErrNotLeader, "after Lead returned")
	require.Zero(t, b.count(t, `true`))
}

// Beside its batches in flight, a session that leads every shard reads
// the rows after them, leaving out their aggregates (window.go); one that
// leads some of the shards reads a lane with no row in flight (lanes.go),
// whose rows may lie between those in flight, and nothing while every
// lane has rows in flight. Neither returns a row in flight, nor a row of
// an aggregate with one, and each returns its rows in sequence order.
func TestShardFetchBesideInFlight(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ relays, second, third int }{
		{relays: 1, second: 10, third: 10},
		{relays: 2, second: 10, third: 0},
		{relays: 4, second: 10, third: 0},
	} {
		t.Run(strconv.Itoa(tc.relays)+" relays", func(t *testing.T) {
			t.Parallel()
			for _, got := range besideFetched(t, tc.relays) {
				require.Equal(t, [2]int{tc.second, tc.third}, got, "rows of the fetches beside 1 and 2 batches in flight, %d shards each", 4/tc.relays)
			}
		})
	}
}

// besideFetched has relays sessions share 4 shards, 2 events of each of
// 400 aggregates (those of an aggregate apart), and returns for each
// session how many rows it fetched beside its first batch in flight, and
// then beside its first two. It checks that, once those are marked, the
// sessions' fetches with nothing in flight read every other row.
func besideFetched(t *testing.T, relays int) [][2]int {
	cfg := &postgres.OutboxConfig{Shards: 4, LeaderPollInterval: 20 * time.Millisecond}
	b := newOutboxBundle(t, cfg)
	b.write(t, cartHistory(400, 2)...) // every aggregate's first event, then every second
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type fetched struct {
		got  [2]int
		rows int // every row the session fetched
		err  error
	}
	results := make(chan fetched, relays)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for range relays {
		ob := b.open(t, cfg)
		wg.Go(func() {
			_ = ob.Lead(ctx, func(lctx context.Context, _ <-chan struct{}) error {
				for len(ob.Shards()) != 4/relays {
					select {
					case <-lctx.Done():
						return nil // the test gave up waiting
					case <-time.After(10 * time.Millisecond):
					}
				}
				var (
					res      fetched
					span     outbox.SeqRange
					inFlight = map[int64]bool{}
					aggs     = map[string]bool{}
				)
				for i := range 3 {
					rows, err := ob.Fetch(lctx, 10, span)
					if err == nil && i == 0 && len(rows) != 10 {
						err = fmt.Errorf("first fetch: %d rows", len(rows))
					}
					for j, p := range rows {
						switch {
						case inFlight[p.Seq]:
							err = fmt.Errorf("row %d is in flight", p.Seq)
						case aggs[p.Event.AggregateID]:
							err = fmt.Errorf("row %d: aggregate %s has a row in flight", p.Seq, p.Event.AggregateID)
						case j > 0 && rows[j-1].Seq >= p.Seq:
							err = fmt.Errorf("row %d after row %d", p.Seq, rows[j-1].Seq)
						}
					}
					for _, p := range rows {
						inFlight[p.Seq], aggs[p.Event.AggregateID] = true, true
						if span.Empty() {
							span = outbox.SeqRange{From: p.Seq, To: p.Seq}
						}
						span.From, span.To = min(span.From, p.Seq), max(span.To, p.Seq)
					}
					if err != nil {
						res.err = fmt.Errorf("fetch %d: %w", i+1, err)
						break
					}
					if i > 0 {
						res.got[i-1] = len(rows)
					}
				}
				// Once they are marked, a fetch with nothing in flight
				// reads every lane: the rest of the session's rows.
				seqs := slices.Collect(maps.Keys(inFlight))
				if res.err == nil {
					res.err = ob.MarkPublished(lctx, seqs)
				}
				if res.err == nil {
					var rest []outbox.Pending
					rest, res.err = ob.Fetch(lctx, 1000, outbox.SeqRange{})
					for j := 1; j < len(rest); j++ {
						if rest[j-1].Seq >= rest[j].Seq {
							res.err = fmt.Errorf("row %d after row %d", rest[j].Seq, rest[j-1].Seq)
						}
					}
					res.rows = len(seqs) + len(rest)
				}
				results <- res
				<-lctx.Done()
				return nil
			})
		})
	}
	var (
		out  [][2]int
		rows int
	)
	for range relays {
		select {
		case r := <-results:
			require.NoError(t, r.err)
			out = append(out, r.got)
			rows += r.rows
		case <-time.After(30 * time.Second):
			t.Fatalf("the relays did not share the shards: %+v", leadersOf(t, b))
		}
	}
	require.Equal(t, 800, rows, "the rows fetched by the sessions")
	return out
}

// The migration gives every row, old and new, its shard key: the stable
// hash of its aggregate ID, the same for every row of an aggregate.
func TestShardKeyOfEveryRow(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	b.write(t, cartHistory(30, 3)...)
	var keys, aggregates, wrong int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(DISTINCT (aggregate_id, shard_key)), count(DISTINCT aggregate_id),
		count(*) FILTER (WHERE shard_key <> hashtext(aggregate_id) & 2147483647 OR shard_key < 0) FROM dddkit_outbox`).Scan(&keys, &aggregates, &wrong))
	require.Equal(t, 30, aggregates)
	require.Equal(t, aggregates, keys, "one key per aggregate")
	require.Zero(t, wrong)
}

// The database computes a row's shard order (the pending index's second
// column) as the relay does: the low 12 bits of its shard key, reversed.
func TestShardOrderInTheDatabase(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	keys := []int32{0, 1, 2, 63, 64, 4095, 4096, 1 << 30, 2147483647}
	for i := range int32(5000) {
		keys = append(keys, i*429_497+i%7) // spread over the non-negative range
	}
	rows, err := b.pool.Query(context.Background(), `SELECT k, `+postgres.ShardOrderSQL("k")+` FROM unnest($1::int4[]) AS k`, keys)
	require.NoError(t, err)
	var k, got int32
	n, err := pgx.ForEachRow(rows, []any{&k, &got}, func() error {
		if want := postgres.ShardOrderOf(k); got != want {
			return fmt.Errorf("key %d: the database's shard order %d, the relay's %d", k, got, want)
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, int64(len(keys)), n.RowsAffected())
	require.Equal(t, int32(0b1000_0000_0000), postgres.ShardOrderOf(1))
	require.Equal(t, int32(0b0000_0000_0001), postgres.ShardOrderOf(2048))
}

// TestShardedRelaysKilledAndRestarted relays 20,000 events (1,000
// aggregates × 20) with three relays in child processes sharing 16
// shards, while the test SIGKILLs leaders (one, then two at once, then
// one) in the middle of their batches and restarts them. Read back from
// Kafka: none lost, every aggregate's events in order; duplicates are
// counted and reported.
func TestShardedRelaysKilledAndRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the fault test in -short mode")
	}
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, 12)
	b := newOutboxBundle(t, nil)

	logPath := filepath.Join(t.TempDir(), "children.log")
	childEnv := []string{envChildSchema + "=" + b.schema, envChildBrokers + "=" + brokers[0], envChildTopic + "=" + topic, envChildBatch + "=200"}
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("child relays' log:\n%s", log)
		}
	})
	children := make([]*testinfra.Child, 3)
	for i := range children {
		children[i] = startChild(t, logPath, childEnv...)
	}
	testinfra.Eventually(t, 60*time.Second, func() bool { return sharedBy(leadersOf(t, b), 3, 16) }, "three relays share 16 shards: %+v", leadersOf(t, b))

	const aggregates, versions = 1000, 20
	events := cartHistory(aggregates, versions)
	var written atomic.Int64
	pending := func() int64 { return int64(b.count(t, `true`)) }
	published := func() int64 { return written.Load() - pending() }
	wg := writePaced(t, b.ob, events, &written) // about 4,000 events/s

	// kill waits for progress and a backlog (so the relays are busy),
	// then SIGKILLs the children who (all lead shards) and starts new ones.
	kill := func(after int64, who ...int) {
		testinfra.Eventually(t, 60*time.Second, func() bool { return published() >= after && pending() >= 50 }, "progress to %d with a backlog", after)
		for _, i := range who {
			_ = children[i].Stop(syscall.SIGKILL)
		}
		t.Logf("SIGKILLed relays %v at %d published, %d pending; leaders now %+v", who, published(), pending(), leadersOf(t, b))
		for _, i := range who {
			children[i] = startChild(t, logPath, childEnv...)
		}
	}
	start := time.Now()
	kill(4000, 0)
	kill(9000, 1, 2)
	kill(14000, 0)
	wg.Wait()
	testinfra.Eventually(t, 120*time.Second, func() bool { return pending() == 0 }, "outbox drained")
	took := time.Since(start)
	testinfra.Eventually(t, 60*time.Second, func() bool { return sharedBy(leadersOf(t, b), 3, 16) }, "three relays share 16 shards again: %+v", leadersOf(t, b))
	for _, c := range children {
		require.NoError(t, c.Stop(syscall.SIGTERM), "relay stops cleanly on SIGTERM")
	}

	got := kafkatest.ReadAll(t, brokers, topic)
	check := outboxtest.NewOrderCheck()
	for _, m := range got {
		v, err := strconv.ParseInt(m.Headers[wire.HeaderAggregateVersion], 10, 64)
		require.NoError(t, err)
		check.Add(m.Headers[wire.HeaderAggregateID], v, m.Headers[wire.HeaderEventID])
	}
	require.NoError(t, check.Complete(aggregates, versions))
	log, err := os.ReadFile(logPath)
	require.NoError(t, err)
	t.Logf("%d events through 3 sharded relays and 4 SIGKILLs in %s: %d records in Kafka, %d duplicates, none lost, order kept; %d leader sessions, %d shard hand-overs",
		len(events), took.Round(time.Millisecond), len(got), check.Duplicates(),
		bytes.Count(log, []byte("relay is the leader")), bytes.Count(log, []byte("handed shards over")))
}

// gatedPublisher holds its holdAt-th publish call until release closes,
// and counts the calls after it.
type gatedPublisher struct {
	message.Publisher
	holdAt  int32
	calls   atomic.Int32
	after   atomic.Int32
	held    chan struct{} // closed when the held call starts
	release chan struct{}
	heldIDs map[string]bool
}

func (p *gatedPublisher) Publish(topic string, msgs ...*message.Message) error {
	switch n := p.calls.Add(1); {
	case n == p.holdAt:
		p.heldIDs = map[string]bool{}
		for _, m := range msgs {
			p.heldIDs[m.UUID] = true
		}
		close(p.held)
		<-p.release
	case n > p.holdAt:
		p.after.Add(1)
	}
	return p.Publisher.Publish(topic, msgs...)
}

// slowPublisher takes delay before each publish call.
type slowPublisher struct {
	message.Publisher
	delay time.Duration
}

func (p slowPublisher) Publish(topic string, msgs ...*message.Message) error {
	time.Sleep(p.delay)
	return p.Publisher.Publish(topic, msgs...)
}

// TestShardFencingWithHalfOpenLockConnection: the leader's lock
// connection goes through a proxy that freezes (stops forwarding without
// closing: a half-open connection) while a batch is in flight, and its
// lock session is terminated on the server; its other connections still
// work. A standby takes every shard over and
// publishes everything; the old leader publishes the batch it had in
// flight and nothing more (its mark, on the dead lock session, fails
// within LeaderTimeout, and it claims nothing again). A consumer without
// inbox sees every aggregate's events in order, apart from that one batch
// repeated.
func TestShardFencingWithHalfOpenLockConnection(t *testing.T) {
	t.Parallel()
	brokers := kafkatest.Brokers(t)
	b := newOutboxBundle(t, nil)
	topic := kafkatest.Topic(t, 6)
	b.useTopic(t, topic)
	ctx := context.Background()
	const aggregates, versions = 100, 20
	b.write(t, cartHistory(aggregates, versions)...)

	// The old leader: a process whose first connection to PostgreSQL
	// goes through the proxy. Its Outbox checks the schema on it, and
	// Lead then takes it, idle, for its lock connection; the pool dials
	// the others (LISTEN, anything else) directly.
	cfg, err := pgxpool.ParseConfig(os.Getenv(pgtest.EnvDatabaseURL))
	require.NoError(t, err)
	proxy := testinfra.NewProxy(t, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))), 0)
	var dialed atomic.Int32
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dialed.Add(1) == 1 {
			addr = proxy.Addr()
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = b.schema
	cfg.MaxConns = 4
	oldPool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(oldPool.Close)
	const leaderTimeout = 2 * time.Second
	oldOutbox, err := postgres.NewOutbox(oldPool, b.reg, &postgres.OutboxConfig{LeaderPollInterval: 100 * time.Millisecond, LeaderTimeout: leaderTimeout})
	require.NoError(t, err)
	gate := &gatedPublisher{Publisher: newKafkaPublisher(t, brokers), holdAt: 3, held: make(chan struct{}), release: make(chan struct{})}
	var (
		errMu  sync.Mutex
		oldErr []error
		lostIt atomic.Int32
	)
	oldRelay, err := outbox.NewRelay(oldOutbox, gate, b.reg, &outbox.RelayConfig{
		BatchSize: 100,
		Hooks: outbox.Hooks{
			OnError: func(err error) {
				errMu.Lock()
				oldErr = append(oldErr, err)
				errMu.Unlock()
			},
			OnLeader: func(leads bool) {
				if !leads {
					lostIt.Add(1)
				}
			},
		},
	})
	require.NoError(t, err)
	stopOld := startRelay(t, oldRelay)
	select {
	case <-gate.held: // batches 1 and 2 are published and marked; batch 3 is in flight
	case <-time.After(30 * time.Second):
		close(gate.release)
		t.Fatal("the old leader did not reach its third batch")
	}

	proxy.Freeze()
	ls := leadersOf(t, b)
	require.Len(t, ls, 1)
	require.Len(t, ls[0].Shards, 16)
	var killed bool
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, ls[0].PID).Scan(&killed))
	require.True(t, killed)
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_, err = oldPool.Exec(qctx, `SELECT 1`)
	cancel()
	require.NoError(t, err, "the old leader's other connections work: only the lock connection is half-open")

	// The standby publishes a batch every 100ms or so: when the old
	// leader's batch in flight goes out, most events are still pending.
	var byStandby atomic.Int32
	standby, err := outbox.NewRelay(b.open(t, &postgres.OutboxConfig{LeaderPollInterval: 100 * time.Millisecond}),
		slowPublisher{newKafkaPublisher(t, brokers), 100 * time.Millisecond}, b.reg, &outbox.RelayConfig{
			BatchSize: 100,
			Hooks:     outbox.Hooks{OnPublished: func(evs []aggregate.Envelope, _ time.Duration) { byStandby.Add(int32(len(evs))) }},
		})
	require.NoError(t, err)
	startRelay(t, standby)
	testinfra.Eventually(t, 30*time.Second, func() bool { return byStandby.Load() >= 100 }, "the standby took over")
	require.Zero(t, lostIt.Load(), "the old leader does not know yet: its batch is in flight")

	// The old leader's batch in flight now goes out; its mark hangs on
	// the frozen lock connection and fails within LeaderTimeout, and it
	// claims nothing more there, though events are pending and its other
	// connections work.
	close(gate.release)
	testinfra.Eventually(t, 30*time.Second, func() bool { return lostIt.Load() > 0 }, "the old leader notices it lost its shards")
	require.Zero(t, gate.after.Load(), "the old leader published nothing after its batch in flight")
	// Its Run reports why (before it is stopped: a stopped relay reports
	// nothing).
	testinfra.Eventually(t, 30*time.Second, func() bool {
		errMu.Lock()
		defer errMu.Unlock()
		return slices.ContainsFunc(oldErr, func(err error) bool { return errors.Is(err, postgres.ErrNotLeader) })
	}, "the old leader reported ErrNotLeader")
	stopOld()
	testinfra.Eventually(t, 60*time.Second, func() bool { return b.count(t, `true`) == 0 }, "the standby published everything")
	proxy.Unfreeze()

	got := kafkatest.ReadAll(t, brokers, topic)
	check := outboxtest.NewOrderCheck()
	seen := map[string]bool{}
	repeated := 0
	for _, m := range got {
		id := m.Headers[wire.HeaderEventID]
		if seen[id] {
			require.True(t, gate.heldIDs[id], "only the batch in flight is repeated: %s", id)
			repeated++
		}
		seen[id] = true
		v, err := strconv.ParseInt(m.Headers[wire.HeaderAggregateVersion], 10, 64)
		require.NoError(t, err)
		check.Add(m.Headers[wire.HeaderAggregateID], v, id)
	}
	require.NoError(t, check.Complete(aggregates, versions))
	require.Equal(t, len(gate.heldIDs), repeated, "the batch in flight, published by both")
	t.Logf("%d events: %d records in Kafka, the old leader's batch in flight (%d events) repeated, nothing else", aggregates*versions, len(got), repeated)
}
