package postgres

import (
	"slices"

	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/outbox"
)

// This file holds what a fetch beside batches in flight leaves out, for
// a Lead session that leads every shard (one that leads some reads by
// lanes instead, lanes.go).
// [outbox.Source.Fetch] leaves out every event of an aggregate with a
// pending row in the in-flight range. Most of those rows are the ones
// the Lead session handed out and has not settled: it knows their
// aggregates, so the database need not read them again for every fetch
// (it did, and reading the range's rows was a fifth of the database's
// work per relayed event). The database reads only the parts of the
// range that hold no row the session handed out: rows committed after
// the fetch that read past their sequence number, rows retried or held
// back since, sequence numbers never used. Usually there are none, or a
// few short ranges.

// maxWindowGaps is the most ranges of the in-flight range a fetch reads
// by name; past it (rows held back or committed late all over the range),
// it reads the whole range instead.
const maxWindowGaps = 64

// heldKey is what the in-flight range holds of the aggregates with one
// shard key: one aggregate, or (when several share the key) every
// aggregate of that key.
type heldKey struct {
	agg aggstore.Key
	all bool
}

// windowScratch is a Lead session's bookkeeping for its fetches beside
// batches in flight, reused from one fetch to the next.
type windowScratch struct {
	seqs     []int64
	los, his []int64 // the ranges for the database to read
	held     map[int32]heldKey
}

// planWindow readies s.window for a fetch beside the rows in flight in r:
// held gets the aggregates of the rows this session handed out in r,
// and los/his the ranges of r left to read from the database (r itself,
// and held nothing, when they would be more than maxWindowGaps); s.mu
// held.
func (s *leadSession) planWindow(r outbox.SeqRange) {
	w := &s.window
	if w.held == nil {
		w.held = make(map[int32]heldKey, len(s.out))
	}
	clear(w.held)
	w.seqs, w.los, w.his = w.seqs[:0], w.los[:0], w.his[:0]
	for q, h := range s.out {
		if r.Contains(q) {
			w.seqs = append(w.seqs, q)
			w.hold(h.key, h.agg)
		}
	}
	slices.Sort(w.seqs)
	next := r.From
	for _, q := range w.seqs {
		if q > next {
			w.los, w.his = append(w.los, next), append(w.his, q-1)
		}
		next = q + 1
	}
	if next <= r.To {
		w.los, w.his = append(w.los, next), append(w.his, r.To)
	}
	if len(w.los) > maxWindowGaps {
		clear(w.held)
		w.los, w.his = append(w.los[:0], r.From), append(w.his[:0], r.To)
	}
}

// hold records that an aggregate with shard key key has a pending row
// in the in-flight range.
func (w *windowScratch) hold(key int32, agg aggstore.Key) {
	h, ok := w.held[key]
	switch {
	case !ok:
		w.held[key] = heldKey{agg: agg}
	case !h.all && h.agg != agg:
		w.held[key] = heldKey{all: true}
	}
}

// holds reports whether the in-flight range holds a pending row of the
// aggregate of p, whose shard key is key.
func (w *windowScratch) holds(key int32, p *outbox.Pending) bool {
	h, ok := w.held[key]
	return ok && (h.all || h.agg == aggstore.KeyOf(&p.Event))
}

// leaveOutHeld drops from out (and its shard keys) the rows of
// aggregates the in-flight range holds, keeping the order.
func (w *windowScratch) leaveOutHeld(out []outbox.Pending, keys []int32) ([]outbox.Pending, []int32) {
	if len(w.held) == 0 {
		return out, keys
	}
	n := 0
	for i := range out {
		if w.holds(keys[i], &out[i]) {
			continue
		}
		out[n], keys[n] = out[i], keys[i]
		n++
	}
	clear(out[n:]) // no references kept past the length
	return out[:n], keys[:n]
}

// maxSpanGap is the most sequence numbers a mark span (seqSpans) skips
// between two of its rows: its bits cost a byte per 8 numbers.
const maxSpanGap = 1024

// seqSpans returns seqs as spans: los[i]..his[i], in which bits[i] has
// bit q-los[i] set for each q of seqs (bit 0 the lowest of the first
// byte, as PostgreSQL's get_bit reads it), or is nil when the span holds
// every number from los[i] to his[i] (the statement then checks no bit).
// A span ends where the next number lies more than gap numbers further
// (at most maxSpanGap).
//
// A mark deletes its rows by walking the pending index across each span,
// one index range per span, instead of an index descent per row (deleting
// 1,000 consecutive rows took 1.35-1.42 ms by number, 0.58-0.64 ms as a
// range). The walk skips other shards' rows in the index, by their shard
// order, but reads from the table every pending row of the relay's shards
// in the span that the mark does not name (rows held back behind a batch
// in flight, committed late) to check its bit: gap bounds how many such
// rows a span can cost per row it names (see Outbox.MarkPublished).
func seqSpans(seqs []int64, gap int64) (los, his []int64, bits [][]byte) {
	gap = min(gap, maxSpanGap)
	if !slices.IsSorted(seqs) {
		seqs = slices.Sorted(slices.Values(seqs))
	}
	first, distinct := 0, 0
	for i := range seqs {
		if i == first || seqs[i] != seqs[i-1] {
			distinct++
		}
		if i+1 < len(seqs) && seqs[i+1]-seqs[i] <= gap+1 {
			continue
		}
		lo, hi := seqs[first], seqs[i]
		var b []byte // nil: every number from lo to hi
		if hi-lo+1 != int64(distinct) {
			b = make([]byte, (hi-lo)/8+1)
			for _, q := range seqs[first : i+1] {
				b[(q-lo)/8] |= 1 << ((q - lo) % 8)
			}
		}
		los, his, bits = append(los, lo), append(his, hi), append(bits, b)
		first, distinct = i+1, 0
	}
	return los, his, bits
}
