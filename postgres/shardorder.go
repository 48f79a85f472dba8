package postgres

import (
	"math/bits"
	"strings"
)

// This file holds the shard order of an outbox row: the low 12 bits of
// its shard key (log2 MaxShards), reversed. The pending index orders the
// pending rows by sequence number and then by shard order (the migration
// step outboxShardOrderSQL), so that a relay leading some of the shards
// walks the index in sequence order and skips the other shards' rows
// inside the index, by a range condition on the shard order, without
// reading them from the table.
//
// Why reversed: with a number of shards n = 2^k, a row's shard is the low
// k bits of its shard key, and the rows of shard s are those whose shard
// order begins with the k bits of s reversed: one range of shard orders,
// 4096/n wide. Sets of shards whose reversed numbers are consecutive (the
// rebalancer takes shards in that order, see shardAt) are one range too.
// With another number of shards the range is every shard order, and the
// shard condition alone picks the rows (after reading them).

// shardOrderBits is the width of a shard order: MaxShards = 2^12.
const shardOrderBits = 12

// shardOrderOf is the shard order of a shard key, as shardOrderSQL
// computes it in the database.
func shardOrderOf(key int32) int32 {
	return int32(bits.Reverse32(uint32(key)) >> (32 - shardOrderBits))
}

// shardOrderSQL is the SQL of the shard order of column col, in the form
// the pending index stores (a query's condition must spell the index's
// expression alike to be checked in the index): each half of the 12 bits
// reversed by a lookup in a 64-byte table, the halves swapped. The
// lookups cost the database less per written row than reversing bit by
// bit.
func shardOrderSQL(col string) string {
	t := reversed6Table()
	return `((get_byte('` + t + `'::bytea, ` + col + ` & 63) << 6) | get_byte('` + t + `'::bytea, (` + col + ` >> 6) & 63))`
}

// reversed6Table is the bytea literal of the 64 six-bit numbers reversed.
func reversed6Table() string {
	var b strings.Builder
	b.WriteString(`\x`)
	for i := range uint32(64) {
		r := bits.Reverse32(i) >> 26
		b.WriteByte("0123456789abcdef"[r>>4])
		b.WriteByte("0123456789abcdef"[r&15])
	}
	return b.String()
}

// shardAt is the shard at position p of the order in which a relay takes
// shards (and, backwards, gives them up): with n a power of two, p's k bits
// reversed, so that the shards at consecutive positions have consecutive
// shard-order ranges (p ↦ shardAt(n, p) is its own inverse); otherwise p.
func shardAt(n, p int) int {
	if !powerOfTwo(n) || n == 1 {
		return p
	}
	k := bits.TrailingZeros(uint(n))
	return int(bits.Reverse32(uint32(p)) >> (32 - k))
}

func powerOfTwo(n int) bool { return n > 0 && n&(n-1) == 0 }

// shardOrderRange is the smallest range of shard orders that holds every
// row of shards (of n): exact for a power-of-two n and shards at
// consecutive positions (see shardAt), the whole range otherwise.
func shardOrderRange(n int, shards []int32) (lo, hi int32) {
	const top = 1<<shardOrderBits - 1
	if !powerOfTwo(n) || len(shards) == 0 {
		return 0, top
	}
	k := bits.TrailingZeros(uint(n))
	width := int32(1) << (shardOrderBits - k)
	lo, hi = top, 0
	for _, s := range shards {
		first := int32(shardAt(n, int(s))) * width // s's k bits reversed, then 12-k free bits
		lo, hi = min(lo, first), max(hi, first+width-1)
	}
	return lo, hi
}
