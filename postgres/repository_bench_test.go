package postgres_test

import (
	"context"
	"encoding/json"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// BenchmarkSave measures Save of a loaded aggregate that recorded 2 new
// events (the version-checked UPDATE of its row plus 2 outbox rows)
// against the same work written by hand with pgx as most code writes it:
// BEGIN, the same UPDATE, the same multi-row outbox INSERT, COMMIT (4
// round trips). All of them run on one connection, one after the other
// in each iteration, so they share the machine's noise; "direct" talks
// to PostgreSQL, "latency_1ms" through a proxy that adds 1 ms each way
// (testinfra.Proxy), where round trips dominate as they do across a
// network. Reported: the mean time of each in µs and dddkit's time over
// pgx's (ratio; with_keys_ratio for a repository whose mapping has a
// unique key, written in the same statement). Every loop records the 2
// events through the aggregate first, so the difference is the
// repository's own cost. The "unit_" runs do the same on a pool, each
// dddkit save inside UnitOfWork.Do, as a command under
// cqrs.Transaction saves: the save is held back for the unit's COMMIT
// and goes with it and the BEGIN (1 round trip); with a unique key it is
// sent with the BEGIN and the COMMIT follows (2 round trips).
//
//	go test -run '^$' -bench BenchmarkSave -benchtime 1000x -count 3 ./postgres/
func BenchmarkSave(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchSave(b, 0, false) })
	b.Run("latency_1ms", func(b *testing.B) { benchSave(b, time.Millisecond, false) })
	b.Run("unit_direct", func(b *testing.B) { benchSave(b, 0, true) })
	b.Run("unit_latency_1ms", func(b *testing.B) { benchSave(b, time.Millisecond, true) })
}

func benchSave(b *testing.B, latency time.Duration, inUnit bool) {
	ctx := context.Background()
	conn := benchDB(b, latency, inUnit)
	require.NoError(b, postgres.Migrate(ctx, conn, nil))
	ob, err := postgres.NewOutbox(conn, repositorytest.Registry(b), nil)
	require.NoError(b, err)
	plainMapping := repositorytest.Mapping()
	plainMapping.Keys = nil // the common case
	repo, err := postgres.NewRepository(conn, ob, plainMapping, nil)
	require.NoError(b, err)
	keyed, err := postgres.NewRepository(conn, ob, repositorytest.Mapping(), nil)
	require.NoError(b, err)

	record2 := func(c *repositorytest.Counter) {
		if err := c.Add(1); err != nil {
			b.Fatal(err)
		}
		if err := c.Add(2); err != nil {
			b.Fatal(err)
		}
	}
	const update = `UPDATE aggregates SET version = $4, state = $5, updated_at = now() WHERE type = $1 AND id = $2 AND version = $3`
	const insert = `INSERT INTO ` + postgres.DefaultOutboxTable + ` (event_id, aggregate_type, aggregate_id, aggregate_version, event_name, event_version, payload, headers, occurred_at)
VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9),($10,$11,$12,$13,$14,$15,$16,$17,$18)`
	type state struct {
		Name  string `json:"name"`
		Value int    `json:"value"`
	}
	handWritten := func(ctx context.Context, c *repositorytest.Counter) error {
		events := c.Changes()
		st, err := json.Marshal(state{Name: c.Name(), Value: c.Value()})
		if err != nil {
			return err
		}
		args := make([]any, 0, 18)
		for _, e := range events {
			payload, err := json.Marshal(e.Payload)
			if err != nil {
				return err
			}
			args = append(args, e.ID, e.AggregateType, e.AggregateID, e.Version, e.Name, 1, payload, nil, e.OccurredAt)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		tag, err := tx.Exec(ctx, update, c.Type(), c.ID(), c.CommittedVersion(), c.Version(), st)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return aggregate.ErrConcurrencyConflict
		}
		if _, err := tx.Exec(ctx, insert, args...); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		aggregate.MarkCommitted(c, c.Version())
		return nil
	}

	saves := []func(context.Context, *repositorytest.Counter) error{repo.Save, keyed.Save, handWritten}
	if inUnit {
		uow, err := postgres.NewUnitOfWork(conn)
		require.NoError(b, err)
		for i, save := range saves[:2] {
			saves[i] = func(ctx context.Context, c *repositorytest.Counter) error {
				return uow.Do(ctx, func(ctx context.Context) error { return save(ctx, c) })
			}
		}
	}
	counters := make([]*repositorytest.Counter, len(saves))
	took := make([]time.Duration, len(saves))
	for i, save := range saves {
		id := "bench-" + dddkittest.UniqueSuffix()
		counters[i], err = repositorytest.NewCounter(id, id)
		require.NoError(b, err)
		require.NoError(b, keyed.Save(ctx, counters[i]))
		// Warm up: statements prepared, caches filled.
		for range 3 {
			record2(counters[i])
			require.NoError(b, save(ctx, counters[i]))
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		for i, save := range saves {
			record2(counters[i])
			start := time.Now()
			if err := save(ctx, counters[i]); err != nil {
				b.Fatal(err)
			}
			took[i] += time.Since(start)
		}
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(b.N) / float64(time.Microsecond) }
	b.ReportMetric(us(took[0]), "dddkit_us")
	b.ReportMetric(us(took[1]), "with_keys_us")
	b.ReportMetric(us(took[2]), "pgx_us")
	b.ReportMetric(float64(took[0])/float64(took[2]), "ratio")
	b.ReportMetric(float64(took[1])/float64(took[2]), "with_keys_ratio")
}

// benchDB is one connection to a schema of the benchmark's own, through
// a proxy adding latency each way when latency > 0; when pool is true, a
// pool of two such connections: one for the saves, one for the
// notification a unit of work sends after its commit (notify.go), so that
// it does not delay the next save.
func benchDB(b *testing.B, latency time.Duration, pool bool) benchHandle {
	cfg := benchConfig(b, latency)
	if !pool {
		conn, err := pgx.ConnectConfig(context.Background(), cfg.ConnConfig)
		require.NoError(b, err)
		b.Cleanup(func() { _ = conn.Close(context.Background()) })
		return conn
	}
	cfg.MinConns, cfg.MaxConns = 2, 2
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(b, err)
	b.Cleanup(p.Close)
	return p
}

// benchHandle is what benchSave needs of its connection or pool.
type benchHandle interface {
	postgres.DB
	BeginTx(ctx context.Context, opts pgx.TxOptions) (pgx.Tx, error)
}

// benchConfig configures a connection to a schema of the benchmark's
// own, through a proxy adding latency each way when latency > 0.
func benchConfig(b *testing.B, latency time.Duration) *pgxpool.Config {
	dbURL, _ := pgtest.SchemaURL(b)
	cfg, err := pgxpool.ParseConfig(dbURL)
	require.NoError(b, err)
	if latency > 0 {
		cc := cfg.ConnConfig
		proxy := testinfra.NewProxy(b, net.JoinHostPort(cc.Host, strconv.Itoa(int(cc.Port))), latency)
		host, port, err := net.SplitHostPort(proxy.Addr())
		require.NoError(b, err)
		p, err := strconv.Atoi(port)
		require.NoError(b, err)
		cc.Host, cc.Port, cc.Fallbacks = host, uint16(p), nil
	}
	return cfg
}
