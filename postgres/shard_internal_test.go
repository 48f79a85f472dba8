package postgres

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/outbox"
)

// testSession is a Lead session of n shards without a connection: for
// its bookkeeping of the rows handed out.
func testSession(n int) *leadSession {
	return &leadSession{n: n, busy: make([]int, n), orders: make([]int32, 1<<shardOrderBits), out: map[int64]handed{}}
}

func ledOf(n int, shards ...int) []bool {
	led := make([]bool, n)
	for _, s := range shards {
		led[s] = true
	}
	return led
}

func sorted(take []int32) []int32 { return slices.Sorted(slices.Values(take)) }

func TestPlanShardsTakesAFairShare(t *testing.T) {
	t.Parallel()
	const me, other, third = 100, 200, 300
	all := make([]int32, 16)
	for i := range all {
		all[i] = int32(i)
	}

	// Alone: every shard, in the order of shardAt.
	p := planShards(16, me, lockState{members: map[uint32]int{me: 16}, holders: map[int]uint32{}}, ledOf(16))
	require.Equal(t, all, sorted(p.take))
	require.Zero(t, p.drop)
	require.Equal(t, []int32{0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15}, p.take)

	// A second relay holds 8: the other 8.
	holders := map[int]uint32{}
	for s := range 8 {
		holders[s] = other
	}
	p = planShards(16, me, lockState{members: map[uint32]int{me: 16, other: 16}, holders: holders}, ledOf(16))
	require.Equal(t, all[8:], sorted(p.take))

	// Two relays that each took the first free half: one range of shard
	// orders each, the other's outside it.
	first := planShards(16, me, lockState{members: map[uint32]int{me: 16, other: 16}, holders: map[int]uint32{}}, ledOf(16))
	taken := map[int]uint32{}
	for _, s := range first.take {
		taken[int(s)] = me
	}
	second := planShards(16, other, lockState{members: map[uint32]int{me: 16, other: 16}, holders: taken}, ledOf(16))
	require.Len(t, first.take, 8)
	require.Len(t, second.take, 8)
	lo1, hi1 := shardOrderRange(16, first.take)
	lo2, hi2 := shardOrderRange(16, second.take)
	require.Equal(t, [4]int32{0, 2047, 2048, 4095}, [4]int32{lo1, hi1, lo2, hi2})

	// Three relays and it holds all 16: it gives 10 up (ceil(16/3) = 6).
	mine := map[int]uint32{}
	for s := range 16 {
		mine[s] = me
	}
	p = planShards(16, me, lockState{members: map[uint32]int{me: 16, other: 16, third: 16}, holders: mine},
		ledOf(16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
	require.Equal(t, shardPlan{drop: 10}, p)

	// At its share: nothing to do, even with free shards.
	p = planShards(16, me, lockState{members: map[uint32]int{me: 16, other: 16}, holders: map[int]uint32{0: me, 1: me, 2: me, 3: me, 4: me, 5: me, 6: me, 7: me}},
		ledOf(16, 0, 1, 2, 3, 4, 5, 6, 7))
	require.Equal(t, shardPlan{}, p)

	// A relay configured with 8 shards holds one: take nothing.
	p = planShards(16, me, lockState{members: map[uint32]int{me: 16, other: 8}, holders: map[int]uint32{3: other}}, ledOf(16))
	require.Equal(t, shardPlan{}, p)
	// Merely running (holding none), it does not count, nor block.
	p = planShards(16, me, lockState{members: map[uint32]int{me: 16, other: 8}, holders: map[int]uint32{}}, ledOf(16))
	require.Len(t, p.take, 16)
}

func TestShardOfKeySpreadsEvenly(t *testing.T) {
	t.Parallel()
	s := testSession(16)
	for k := range int32(1600) {
		s.handOut(&outbox.Pending{Seq: int64(k)}, k*1_342_177) // keys spread over the non-negative int32 range
	}
	for sh, n := range s.busy {
		require.Equal(t, 100, n, "shard %d", sh)
	}
	s.handOut(&outbox.Pending{Seq: 5}, 7) // seq 5 again: fetched again after an abandoned batch
	require.Equal(t, 1600, len(s.out))
}

// Lanes cut a range of shard orders in two halves (one lane when it
// holds one order), with neither gap nor overlap.
func TestLanesOfCutTheRange(t *testing.T) {
	t.Parallel()
	require.Equal(t, []orderRange{{0, 2047}, {2048, 4095}}, lanesOf(0, 4095))
	require.Equal(t, []orderRange{{1024, 1535}, {1536, 2047}}, lanesOf(1024, 2047))
	require.Equal(t, []orderRange{{6, 6}, {7, 7}}, lanesOf(6, 7))
	require.Equal(t, []orderRange{{9, 9}}, lanesOf(9, 9))
	require.Equal(t, []orderRange{{0, 1}, {2, 4}}, lanesOf(0, 4))
}

// With nothing in flight a fetch reads every lane, the first in turn;
// beside batches in flight, the next lane without a row in flight, and
// none when each has one.
func TestLanesToReadSkipLanesInFlight(t *testing.T) {
	t.Parallel()
	s := testSession(4)
	shard0 := []int32{0} // shard orders 0..1023: lanes 0..511 and 512..1023
	a, b := orderRange{0, 511}, orderRange{512, 1023}
	require.Equal(t, []orderRange{a, b}, s.lanesToRead(shard0, false))
	require.Equal(t, []orderRange{b, a}, s.lanesToRead(shard0, false))
	require.Equal(t, []orderRange{a, b}, s.lanesToRead(shard0, false))

	key := func(order int32) int32 { // a shard key of shard 0 with that shard order
		for k := int32(0); ; k += 4 {
			if shardOrderOf(k) == order {
				return k
			}
		}
	}
	s.handOut(&outbox.Pending{Seq: 1}, key(700)) // in lane b
	require.Equal(t, []orderRange{a}, s.lanesToRead(shard0, true))
	require.Equal(t, []orderRange{a}, s.lanesToRead(shard0, true), "lane b still has a row in flight")
	s.handOut(&outbox.Pending{Seq: 2}, key(3)) // in lane a
	require.Empty(t, s.lanesToRead(shard0, true))
	require.NoError(t, s.settle(t.Context(), []int64{1}))
	require.Equal(t, []orderRange{b}, s.lanesToRead(shard0, true))
	require.Len(t, s.lanesToRead(shard0, false), 2, "nothing in flight for the relay: every lane")

	require.Empty(t, s.lanesToRead(nil, true), "every led shard drains")
	require.Equal(t, []orderRange{{0, 4095}}, s.lanesToRead(nil, false))
}
