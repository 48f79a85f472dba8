package postgres_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// planningOnce returns a connection to b's schema that plans a prepared
// statement once, as pgx's cached statements end up being planned, then
// runs setup (which may set plan_cache_mode otherwise); onNotice, when
// not nil, receives its notices.
func planningOnce(t *testing.T, b pgBundle, onNotice pgconn.NoticeHandler, setup ...string) *pgx.Conn {
	t.Helper()
	ctx := t.Context()
	cfg := b.pool.Config().ConnConfig.Copy()
	cfg.OnNotice = onNotice
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(ctx) })
	for _, sql := range append([]string{`SET plan_cache_mode = force_generic_plan`}, setup...) {
		_, err := conn.Exec(ctx, sql)
		require.NoError(t, err, "%s (auto_explain needs a superuser)", sql)
	}
	return conn
}

// The relay's statements keep to the outbox's indexes whatever its
// statistics say. A prepared statement runs on a plan made once (the
// generic plan pgx's statement cache gets after five runs), and an
// outbox planned while empty (a new table, a burst before autovacuum
// analyzed it) looked like ten pages: the fetch beside batches in flight
// then scanned the whole table for every candidate row's blocked check,
// and the marks scanned it for their rows. Measured in the end-to-end
// benchmark: a 1,500-row fetch on a 20,000-row outbox took 8.3 s, and
// half the runs fell to 820–1,230 events/s.
//
// Each statement is checked on the plan made on the empty outbox and
// kept, on a plan made again on the filled outbox before any ANALYZE
// (what a cache invalidation gives: the planner then sees the table's
// pages but guesses 0.5% of its rows pending, four), and on a plan made
// after ANALYZE. A mark or window read that joined the outbox to its
// ranges read every pending row once in the first two (a full walk of
// the pending index, or a bitmap of it, joined to the ranges).
func TestRelayPlansStayOnIndexesWithStaleStatistics(t *testing.T) {
	t.Parallel()
	for _, state := range []string{"kept", "replanned", "analyzed"} {
		t.Run(state, func(t *testing.T) {
			t.Parallel()
			b := setupPG(t, repositorytest.Registry(t))
			ctx := t.Context()
			table := pgx.Identifier{b.schema, postgres.DefaultOutboxTable}.Sanitize()
			statements, err := b.outbox.RelayStatements(ctx)
			require.NoError(t, err)
			conn := planningOnce(t, b, nil, postgres.LeadPlannerSQL)
			args := map[string]string{
				"fetch": "(1000)", "fetch_shards": "(1000, 16, '{0,8}', 0, 511)",
				"fetch_beside": "(1000, 1, 1000)",
				"window":       "('{1,500}', '{400,1000}')",
				"published":    `('{1,10}', '{5,12}', '{"\\x1f","\\x05"}', '{0,0}', '{4095,4095}')`, "attempts": "('{1}', '{1}', '{boom}', '{f}', '{100}')",
			}
			explain := func(name string) string {
				rows, err := conn.Query(ctx, `EXPLAIN EXECUTE relay_`+name+args[name])
				require.NoError(t, err)
				lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
				require.NoError(t, err)
				return strings.Join(lines, "\n")
			}
			for name, sql := range statements {
				_, err := conn.Prepare(ctx, "relay_"+name, sql)
				require.NoError(t, err)
				explain(name) // planned on the empty outbox, and kept
			}

			// A backlog of 3,000 events of 3,000 aggregates.
			_, err = b.pool.Exec(ctx, `INSERT INTO `+table+`
		(event_id, aggregate_type, aggregate_id, aggregate_version, event_name, payload, occurred_at)
		SELECT 'e' || i, 'counter', 'c' || i, 1, 'counter.incremented', '\x7b7d', now() FROM generate_series(1, 3000) i`)
			require.NoError(t, err)
			switch state {
			case "replanned":
				_, err = conn.Exec(ctx, `DISCARD PLANS`)
			case "analyzed":
				_, err = conn.Exec(ctx, `ANALYZE `+table)
			}
			require.NoError(t, err)

			// A range's rows read from an index by its bounds.
			spanRead := func(index string) string {
				return `Index Scan using ` + postgres.DefaultOutboxTable + `_` + index + ` on ` + postgres.DefaultOutboxTable + ` o[^\n]*\n\s+Index Cond: \(\(seq >= r\.lo\) AND \(seq <= r\.hi\)`
			}
			for name := range statements {
				plan := explain(name)
				assert.NotContains(t, plan, "Seq Scan on "+postgres.DefaultOutboxTable, "%s plans a scan of the whole outbox:\n%s", name, plan)
				switch {
				case name == "published":
					// Each span's rows in the pending index, shard
					// orders included; then the rows by their tuple IDs.
					assert.Regexp(t, spanRead(`pending_shard_idx`)+` AND .*get_byte`, plan, name)
					assert.Contains(t, plan, `Tid Scan on `+postgres.DefaultOutboxTable+` m`, name)
				case name == "window":
					// The pending index, or the primary key when every
					// row is pending.
					assert.Regexp(t, spanRead(`(pending_shard_idx|pkey)`), plan, name)
				case strings.HasSuffix(name, "_shards"):
					// The other shards' rows are skipped in the index, not read
					// from the table and filtered.
					assert.Regexp(t, `Index Scan using `+postgres.DefaultOutboxTable+`_pending_shard_idx on `+postgres.DefaultOutboxTable+` o[^\n]*\n\s+Index Cond: \(.*get_byte`, plan, name)
				}
				if name == "published" || name == "window" {
					assert.NotContains(t, plan, "Materialize", "%s reads the pending rows once and joins them:\n%s", name, plan)
				}
			}
		})
	}
}

// An event stream read is planned for the table it reads. Had it kept a
// plan made on an empty events table, it would read and sort every event
// after the position for each batch (measured: 18 ms for 10 events of
// 20,000, against 0.1 ms walking the position index), and a projection
// catching up from the start would read the whole table per batch. The
// read's plan is captured with auto_explain (sent to the connection as a
// notice), on a connection that plans a prepared statement once.
func TestStreamReadPlansForTheTableItReads(t *testing.T) {
	t.Parallel()
	reg := repositorytest.Registry(t)
	b := setupPG(t, reg)
	ctx := t.Context()
	var (
		mu    sync.Mutex
		plans []string
	)
	conn := planningOnce(t, b, func(_ *pgconn.PgConn, n *pgconn.Notice) {
		mu.Lock()
		defer mu.Unlock()
		plans = append(plans, n.Message)
	}, `LOAD 'auto_explain'`, `SET auto_explain.log_min_duration = 0`, `SET auto_explain.log_level = notice`)
	stream, err := postgres.NewEventStream(conn, reg, nil)
	require.NoError(t, err)
	_, err = stream.Read(ctx, 0, repository.StreamFilter{}, 10) // on the empty table
	require.NoError(t, err)

	_, err = b.pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{b.schema, postgres.DefaultEventsTable}.Sanitize()+`
		(type, id, version, event_id, name, payload, occurred_at)
		SELECT 'counter', 'c' || (i % 1000), i, 'e' || i, 'repositorytest.counter_added', '{"N":1}', now()
		FROM generate_series(1, 20000) i`)
	require.NoError(t, err)
	mu.Lock()
	plans = nil
	mu.Unlock()
	got, err := stream.Read(ctx, 0, repository.StreamFilter{}, 10)
	require.NoError(t, err)
	require.Len(t, got, 10)
	require.Equal(t, int64(1), got[0].Position)

	mu.Lock()
	defer mu.Unlock()
	plan := strings.Join(plans, "\n")
	require.Contains(t, plan, "Index Scan using "+postgres.DefaultEventsTable+"_position_key")
	require.NotContains(t, plan, "Sort", "the read sorts the events after its position:\n%s", plan)
}

// A mark reads each span's rows from the pending index, whatever the
// planner makes of its range of shard orders. With that range as
// parameters of their own, the planner (guessing 0.5% of the rows in it)
// read every pending row of the range once and joined them to the spans:
// 50,000 rows read for a mark of 2,000, measured with four relays.
func TestMarkPlanReadsEachSpanFromTheIndex(t *testing.T) {
	t.Parallel()
	b := setupPG(t, repositorytest.Registry(t))
	ctx := t.Context()
	statements, err := b.outbox.RelayStatements(ctx)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{b.schema, postgres.DefaultOutboxTable}.Sanitize()+`
		(event_id, aggregate_type, aggregate_id, aggregate_version, event_name, payload, occurred_at)
		SELECT 'e' || i, 'counter', 'c' || (i % 5000), 1, 'counter.incremented', '\x7b7d', now() FROM generate_series(1, 40000) i`)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `ANALYZE `+pgx.Identifier{b.schema, postgres.DefaultOutboxTable}.Sanitize())
	require.NoError(t, err)
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		conn := planningOnce(t, b, nil, postgres.LeadPlannerSQL, `SET plan_cache_mode = `+mode)
		_, err := conn.Prepare(ctx, "mark", statements["published"])
		require.NoError(t, err)
		rows, err := conn.Query(ctx, `EXPLAIN EXECUTE mark('{100,5000,20000}', '{400,5300,20300}', '{NULL,NULL,NULL}', '{0,0,0}', '{1023,1023,1023}')`)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		plan := strings.Join(lines, "\n")
		assert.Regexp(t, `Index Scan using `+postgres.DefaultOutboxTable+`_pending_shard_idx on `+postgres.DefaultOutboxTable+` o[^\n]*\n\s+Index Cond: \(\(seq >= r\.lo\) AND \(seq <= r\.hi\)`, plan, mode)
		assert.NotContains(t, plan, "Materialize", mode)
	}
}
