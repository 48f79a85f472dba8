package postgres_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/outbox"
)

// BenchmarkFetchBesideDeadlines measures one relay cycle (write 100
// events, Fetch them, MarkPublished) on an outbox that holds no
// deadline, and on one that holds 100,000 deadlines not yet due: the
// relay's queries must not scan them (they are outside the pending
// index until due; the promotion probe reads the due-time index).
func BenchmarkFetchBesideDeadlines(b *testing.B) {
	for _, scheduled := range []int{0, 100_000} {
		b.Run("scheduled="+strconv.Itoa(scheduled), func(b *testing.B) {
			ctx := context.Background()
			bb := newOutboxBundle(b, nil)
			if scheduled > 0 {
				_, err := bb.pool.Exec(ctx, `INSERT INTO dddkit_outbox (event_id, aggregate_type, aggregate_id, aggregate_version,
	event_name, payload, occurred_at, status, due_at, schedule_key)
SELECT 'd-' || i, 'cart', 'k-' || i, 1, 'cart.item_added', '{"sku":"x","n":1}', now() + interval '1 day',
	'scheduled', now() + interval '1 day' + i * interval '1 second', 'k-' || i
FROM generate_series(1, $1) AS i`, scheduled)
				require.NoError(b, err)
				_, err = bb.pool.Exec(ctx, `ANALYZE dddkit_outbox`)
				require.NoError(b, err)
			}
			// Fetch and MarkPublished run inside Lead, as the relay calls them.
			require.NoError(b, bb.ob.Lead(ctx, func(ctx context.Context, _ <-chan struct{}) error {
				b.ResetTimer()
				for i := range b.N {
					b.StopTimer()
					batch := cartHistory(100, 1)
					for k := range batch {
						batch[k].AggregateID = "b" + strconv.Itoa(i) + "-" + strconv.Itoa(k)
					}
					bb.write(b, batch...)
					b.StartTimer()
					got, err := bb.ob.Fetch(ctx, 100, outbox.SeqRange{})
					require.NoError(b, err)
					require.Len(b, got, 100)
					seqs := make([]int64, len(got))
					for k, p := range got {
						seqs[k] = p.Seq
					}
					require.NoError(b, bb.ob.MarkPublished(ctx, seqs))
				}
				b.StopTimer()
				return nil
			}))
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
