package postgres

import "slices"

// This file holds how a Lead session that leads some of the shards, not
// all, fetches beside its batches in flight: by lanes.
//
// A session leading every shard reads beside its batches in flight the
// rows after them, leaving out the aggregates they hold (window.go): its
// rows in flight are consecutive, so the database reads few rows to learn
// those aggregates. The rows in flight of a session leading some shards
// are not consecutive (the other shards' rows lie between them), so it
// would read them all again for their aggregates (measured: 4 relays of
// one shard each cost PostgreSQL 5.7-6.6 µs per event so, 3.4-3.7
// without); without reading beside, such a relay fetched, published and
// marked one batch after the other, and relays started together kept in
// step: all fetching at once while the broker idled, then all publishing
// while PostgreSQL idled.
//
// Instead its shards' range of shard orders (shardorder.go) is cut into
// numLanes lanes. Every row of an aggregate has one shard key, so one
// shard order and one lane: a lane with no row in flight shares no
// aggregate with the rows in flight, and a fetch of that lane alone is as
// safe as a fetch with nothing in flight, needing nothing read for the
// batches in flight. So, beside its batches in flight, the session reads
// the next lane with none in flight (nothing while every lane has some),
// and with nothing in flight the lanes in turn, the next one only when
// the first is short of the limit. With a backlog, one batch of each lane
// is in flight at a time: the relay fetches and marks one lane while it
// publishes the other.
//
// A lane holds half the relay's rows, so its fetches and marks walk past
// about twice as many entries of the pending index per row (four relays
// of one shard each: PostgreSQL 3.5-4.3 µs per event, against 2.9-3.5
// publishing one batch at a time); in exchange the relays no longer wait
// for each other's statements (measured side by side, 22 rounds: four
// relays ÷ one relay, steady rate, medians 1.06 -> 1.13; two processes of
// 8 of 16 shards, 67,000-85,000 -> 92,000-124,000 events/s).

// numLanes is how many lanes the shard orders of a session leading some
// of the shards are cut into: the default MaxInFlight.
const numLanes = 2

// orderRange is the range of shard orders lo..hi.
type orderRange struct{ lo, hi int32 }

// lanesOf cuts lo..hi into up to numLanes lanes of about equal width.
func lanesOf(lo, hi int32) []orderRange {
	n := int32(min(numLanes, int(hi-lo)+1))
	out := make([]orderRange, 0, n)
	for i := range n {
		out = append(out, orderRange{lo: lo + (hi-lo+1)*i/n, hi: lo + (hi-lo+1)*(i+1)/n - 1})
	}
	return out
}

// lanesToRead returns the lanes of shards (some of the shards, those the
// session may claim rows of) for a fetch to read in turn: beside batches
// in flight the next lane with no row in flight, if any; with nothing in
// flight every lane, starting from the one after the lane read first
// last time; s.mu held.
func (s *leadSession) lanesToRead(shards []int32, beside bool) []orderRange {
	if len(shards) == 0 { // every led shard drains
		if beside {
			return nil
		}
		return []orderRange{{lo: 0, hi: 1<<shardOrderBits - 1}} // due deadlines are promoted still
	}
	lanes := lanesOf(shardOrderRange(s.n, shards))
	k := s.lane % len(lanes)
	lanes = slices.Concat(lanes[k:], lanes[:k])
	if beside {
		i := 0
		for i < len(lanes) && !s.idle(lanes[i]) {
			i++
		}
		if i == len(lanes) {
			return nil
		}
		lanes = lanes[i : i+1]
		k += i
	}
	s.lane = k + 1
	return lanes
}

// idle reports whether no row the session handed out and has not marked
// lies in lane l; s.mu held.
func (s *leadSession) idle(l orderRange) bool {
	for _, n := range s.orders[l.lo : l.hi+1] {
		if n != 0 {
			return false
		}
	}
	return true
}
