package postgres

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/outbox"
)

func pendingOf(seq int64, typ, id string) outbox.Pending {
	return outbox.Pending{Seq: seq, Event: aggregate.Envelope{AggregateType: typ, AggregateID: id}}
}

func windowSession(rows ...outbox.Pending) *leadSession {
	s := testSession(4)
	for i := range rows {
		s.handOut(&rows[i], int32(rows[i].Event.AggregateID[0])) // a shard key per first letter
	}
	return s
}

// The database reads the parts of the in-flight range holding no row the
// session handed out; the session knows the aggregates of the others.
func TestPlanWindowReadsOnlyWhatWasNotHandedOut(t *testing.T) {
	t.Parallel()
	s := windowSession(pendingOf(10, "cart", "a"), pendingOf(11, "cart", "b"), pendingOf(14, "cart", "c"),
		pendingOf(15, "cart", "a"), pendingOf(30, "cart", "z")) // 30: outside the range
	s.planWindow(outbox.SeqRange{From: 8, To: 17})
	assert.Equal(t, []int64{8, 12, 16}, s.window.los)
	assert.Equal(t, []int64{9, 13, 17}, s.window.his)
	cartA, orderA, cartZ := pendingOf(0, "cart", "a"), pendingOf(0, "order", "a"), pendingOf(0, "cart", "z")
	assert.True(t, s.window.holds('a', &cartA))
	assert.False(t, s.window.holds('a', &orderA), "another type's aggregate with the same ID (and shard key) goes on")
	assert.False(t, s.window.holds('z', &cartZ), "a row handed out outside the range holds nothing back")

	// A range of handed-out rows only: nothing to read.
	s.planWindow(outbox.SeqRange{From: 10, To: 11})
	assert.Empty(t, s.window.los)
	assert.Len(t, s.window.held, 2)
	assert.False(t, s.window.holds('c', &cartA))
}

// Past maxWindowGaps ranges the database reads the whole range, and the
// session holds nothing back of its own: the database reports every row.
func TestPlanWindowReadsTheWholeRangeWhenGapsAreMany(t *testing.T) {
	t.Parallel()
	var handedOut []outbox.Pending
	for i := range int64(maxWindowGaps + 1) {
		handedOut = append(handedOut, pendingOf(100+2*i, "cart", "a"))
	}
	s := windowSession(handedOut...)
	r := outbox.SeqRange{From: 100, To: 100 + 2*maxWindowGaps + 1}
	s.planWindow(r)
	assert.Equal(t, []int64{r.From}, s.window.los)
	assert.Equal(t, []int64{r.To}, s.window.his)
	assert.Empty(t, s.window.held)

	// One gap fewer: the ranges are listed.
	s.planWindow(outbox.SeqRange{From: 100, To: 100 + 2*maxWindowGaps - 1})
	assert.Len(t, s.window.los, maxWindowGaps)
	assert.NotEmpty(t, s.window.held)
}

func TestLeaveOutHeldKeepsTheOrderOfTheRest(t *testing.T) {
	t.Parallel()
	var w windowScratch
	w.held = map[int32]heldKey{}
	w.hold(7, aggstore.Key{Type: "cart", ID: "a"})
	w.hold(9, aggstore.Key{Type: "cart", ID: "b"})
	w.hold(9, aggstore.Key{Type: "cart", ID: "c"}) // b and c share key 9: every aggregate of key 9 waits
	out := []outbox.Pending{pendingOf(1, "cart", "x"), pendingOf(2, "cart", "a"), pendingOf(3, "order", "a"),
		pendingOf(4, "cart", "d"), pendingOf(5, "cart", "e"), pendingOf(6, "cart", "y")}
	keys := []int32{3, 7, 7, 9, 9, 4}
	out, keys = w.leaveOutHeld(out, keys)
	var seqs []int64
	for _, p := range out {
		seqs = append(seqs, p.Seq)
	}
	require.Equal(t, []int64{1, 3, 6}, seqs)
	require.Equal(t, []int32{3, 7, 4}, keys)
}

func TestSeqSpans(t *testing.T) {
	t.Parallel()
	// At most maxSpanGap numbers skipped, whatever gap asks for.
	const a, b, c = 2000, 2000 + maxSpanGap + 1, 2000 + 2*maxSpanGap + 3
	los, his, bits := seqSpans([]int64{7, 3, 4, 5, 9, 8, 12, 4, a, b, c}, 1<<20)
	assert.Equal(t, []int64{3, a, c}, los)
	assert.Equal(t, []int64{12, b, c}, his)
	// 3 4 5 7 8 9 12 from 3: bits 0 1 2 4 5 6 9.
	assert.Equal(t, []byte{0b0111_0111, 0b0000_0010}, bits[0])
	assert.Len(t, bits[1], (b-a)/8+1)
	assert.Equal(t, byte(1), bits[1][0])
	assert.Equal(t, byte(1<<((b-a)%8)), bits[1][(b-a)/8])
	assert.Nil(t, bits[2], "every number of the span")

	// Consecutive, one listed twice: every number, no bits.
	los, his, bits = seqSpans([]int64{5, 6, 6, 7, 8}, 3)
	assert.Equal(t, []int64{5}, los)
	assert.Equal(t, []int64{8}, his)
	assert.Equal(t, [][]byte{nil}, bits)
	// One missing: bits.
	_, _, bits = seqSpans([]int64{5, 6, 6, 8}, 3)
	assert.Equal(t, [][]byte{{0b1011}}, bits)

	// A span skips at most gap numbers between two of its rows.
	los, his, _ = seqSpans([]int64{1, 3, 7, 8, 20, 25}, 3)
	assert.Equal(t, []int64{1, 20, 25}, los, "4, 5 and 6 skipped; 9 to 19 and 21 to 24 not")
	assert.Equal(t, []int64{8, 20, 25}, his)
	// Gap 0: runs of consecutive numbers.
	los, his, bits = seqSpans([]int64{1, 2, 4, 5, 6}, 0)
	assert.Equal(t, []int64{1, 4}, los)
	assert.Equal(t, []int64{2, 6}, his)
	assert.Equal(t, [][]byte{nil, nil}, bits)

	los, his, bits = seqSpans(nil, 3)
	assert.Empty(t, los)
	assert.Empty(t, his)
	assert.Empty(t, bits)
}
