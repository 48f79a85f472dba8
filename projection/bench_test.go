package projection_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/projection"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// BenchmarkRebuild rebuilds a projection from 100,000 events of the
// PostgreSQL event store (1,000 counters × 100 events; or
// PROJECTION_BENCH_EVENTS) into a PostgreSQL read model (a row per
// event, queued with postgres.QueueExec), beside the raw sequential
// reads of the same rows: plain SQL pages of 1,000 in position order,
// and the EventStream's Read in pages of 1,000 (decoding the payloads).
// Each op is one full pass; events/s is the figure.
//
//	scripts/testenv.sh go test -run '^$' -bench Rebuild -benchtime 3x ./projection/
func BenchmarkRebuild(b *testing.B) {
	ctx := context.Background()
	total := 100_000
	if v, err := strconv.Atoi(os.Getenv("PROJECTION_BENCH_EVENTS")); err == nil && v >= 100 {
		total = v
	}
	pool := pgtest.Pool(b)
	if err := postgres.Migrate(ctx, pool, nil); err != nil {
		b.Fatal(err)
	}
	// Each variant writes a table of its own, so that none pays for the
	// dead rows of another.
	for _, table := range []string{"hand_rm", "bench_rm_500", "bench_rm_1000"} {
		if _, err := pool.Exec(ctx, readModelSQL(table)); err != nil {
			b.Fatal(err)
		}
	}
	reg, err := counterRegistry()
	if err != nil {
		b.Fatal(err)
	}
	// A creation, 98 additions and a rename: 100 events per counter, of
	// which the projection handles 99.
	if err := writeCounters(ctx, pool, reg, 0, total/100, 98); err != nil {
		b.Fatal(err)
	}
	stream, err := postgres.NewEventStream(pool, reg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer stream.Close()
	handled := int64(total / 100 * 99)
	perSecond := func(b *testing.B, events int64, took time.Duration) {
		b.ReportMetric(float64(events)*float64(b.N)/took.Seconds(), "events/s")
	}

	b.Run("raw-sql-read", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			var after, n int64
			for {
				rows, err := pool.Query(ctx, `SELECT position, event_id, name, payload::text FROM aggregate_events
					WHERE position > $1 ORDER BY position LIMIT 1000`, after)
				if err != nil {
					b.Fatal(err)
				}
				var page int64
				for rows.Next() {
					var id, name, payload string
					if err := rows.Scan(&after, &id, &name, &payload); err != nil {
						b.Fatal(err)
					}
					page++
				}
				if rows.Err() != nil {
					b.Fatal(rows.Err())
				}
				n += page
				if page == 0 {
					break
				}
			}
		}
		perSecond(b, int64(total/100*100), time.Since(start))
	})
	b.Run("stream-read", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			var after int64
			for {
				events, err := stream.Read(ctx, after, repository.StreamFilter{}, 1000)
				if err != nil {
					b.Fatal(err)
				}
				if len(events) == 0 {
					break
				}
				after = events[len(events)-1].Position
			}
		}
		perSecond(b, int64(total/100*100), time.Since(start))
	})
	b.Run("hand-written-rebuild-1000", func(b *testing.B) {
		// What a rebuild written by hand costs: read pages of 1,000 rows
		// in SQL and insert them into the read model, pipelined, in one
		// transaction per page (no decoding, no checkpoint).
		start := time.Now()
		for b.Loop() {
			if _, err := pool.Exec(ctx, `DELETE FROM hand_rm`); err != nil {
				b.Fatal(err)
			}
			var after int64
			for {
				rows, err := pool.Query(ctx, `SELECT position, event_id, id, version FROM aggregate_events
					WHERE position > $1 AND name <> $2 ORDER BY position LIMIT 1000`, after, repositorytest.CounterRenamed{}.EventName())
				if err != nil {
					b.Fatal(err)
				}
				var batch pgx.Batch
				for rows.Next() {
					var id, agg string
					var v int64
					if err := rows.Scan(&after, &id, &agg, &v); err != nil {
						b.Fatal(err)
					}
					batch.Queue(`INSERT INTO hand_rm (event_id, aggregate_id, version) VALUES ($1, $2, $3)
						ON CONFLICT (event_id) DO UPDATE SET applied = hand_rm.applied + 1`, id, agg, v)
				}
				if rows.Err() != nil {
					b.Fatal(rows.Err())
				}
				if batch.Len() == 0 {
					break
				}
				if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &batch).Close() }); err != nil {
					b.Fatal(err)
				}
			}
		}
		perSecond(b, handled, time.Since(start))
	})
	for _, batch := range []int{500, projection.DefaultBatchSize} {
		table := "bench_rm_" + strconv.Itoa(batch)
		b.Run("rebuild-batch-"+strconv.Itoa(batch), func(b *testing.B) {
			p, err := counterProjection(table, table, reg)
			if err != nil {
				b.Fatal(err)
			}
			store, err := postgres.NewProjectionStore(pool, nil)
			if err != nil {
				b.Fatal(err)
			}
			r, err := projection.NewRunner(p, stream, store, &projection.RunnerConfig{BatchSize: batch, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for b.Loop() {
				if err := r.Rebuild(ctx, nil); err != nil {
					b.Fatal(err)
				}
			}
			perSecond(b, handled, time.Since(start))
			var n int64
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != handled {
				b.Fatalf("read model has %d rows (%v), want %d", n, err, handled)
			}
		})
	}
}
