package postgres

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// Every row of a shard has a shard order in its shard's range, and the
// ranges of one power-of-two number of shards do not overlap.
func TestShardOrderRangeHoldsItsShardsRows(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([]int32, 20000)
	for i := range keys {
		keys[i] = rng.Int32() // non-negative, as shard_key
	}
	for _, n := range []int{1, 2, 4, 8, 16, 64, 4096} {
		for s := range n {
			lo, hi := shardOrderRange(n, []int32{int32(s)})
			require.Equal(t, int32(4096/n), hi-lo+1, "n=%d shard %d", n, s)
			for _, k := range keys {
				in := shardOrderOf(k) >= lo && shardOrderOf(k) <= hi
				require.Equal(t, int(k)%n == s, in, "n=%d shard %d key %d order %d range %d..%d", n, s, k, shardOrderOf(k), lo, hi)
			}
		}
	}
	// Another number of shards: the whole range.
	lo, hi := shardOrderRange(12, []int32{3})
	require.Equal(t, [2]int32{0, 4095}, [2]int32{lo, hi})
	// Shards at consecutive positions of shardAt: one range; others: the
	// range that holds them all.
	lo, hi = shardOrderRange(16, []int32{int32(shardAt(16, 4)), int32(shardAt(16, 5)), int32(shardAt(16, 6))})
	require.Equal(t, [2]int32{4 * 256, 7*256 - 1}, [2]int32{lo, hi})
	lo, hi = shardOrderRange(16, []int32{int32(shardAt(16, 1)), int32(shardAt(16, 9))})
	require.Equal(t, [2]int32{256, 10*256 - 1}, [2]int32{lo, hi})
}

func TestShardAtIsAPermutationOfPositions(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2, 3, 16, 12, 4096} {
		seen := make([]bool, n)
		for p := range n {
			s := shardAt(n, p)
			require.False(t, seen[s], "n=%d: shard %d twice", n, s)
			seen[s] = true
			require.Equal(t, p, shardAt(n, s), "n=%d: shardAt is its own inverse", n)
		}
	}
	require.Equal(t, []int{0, 8, 4, 12}, []int{shardAt(16, 0), shardAt(16, 1), shardAt(16, 2), shardAt(16, 3)})
}
