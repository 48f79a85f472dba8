package postgres_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/repository/repositorytest"
)

// BenchmarkEventStoreSaveParallel measures saves of one event each by
// concurrent writers (4 per CPU), each on its own aggregate: what the
// append lock, which makes appending transactions commit one at a time,
// leaves of the write throughput.
//
//	go test -run '^$' -bench BenchmarkEventStoreSaveParallel -count 5 ./postgres/
func BenchmarkEventStoreSaveParallel(b *testing.B) {
	ctx := context.Background()
	pg := setupPG(b, repositorytest.Registry(b))
	store := newEventStore(b, pg)
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("c%d", n.Add(1))
		c, err := repositorytest.NewCounter(id, id)
		require.NoError(b, err)
		for pb.Next() {
			if err := store.Save(ctx, c); err != nil {
				b.Error(err)
				return
			}
			if err := c.Add(1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
