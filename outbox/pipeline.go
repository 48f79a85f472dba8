package outbox

import (
	"context"
	"sync"
)

// pipeline publishes fetched batches concurrently, up to
// [RelayConfig].MaxInFlight at a time, and hands them back in the order
// their publishing finished (acknowledgement order) for the relay to
// settle. Only the relay's goroutine calls its methods; the batches'
// goroutines only publish, so the Source sees one call at a time.
//
// A batch stays in the pipeline until it is settled: until then its rows
// are still pending in the Source, and [pipeline.inFlight] spans them, so
// that the next Fetch neither returns them again nor returns a later event
// of their aggregates. Batches in flight together therefore never share
// an aggregate, and no event can overtake an earlier one of its
// aggregate, nor the retry of one that failed.
type pipeline struct {
	proc    *processor
	ctx     context.Context // publishing; cancelled when leadership is lost
	max     int
	flights map[*flight]struct{}
	done    chan *flight
	wg      sync.WaitGroup
}

// flight is one batch in the pipeline.
type flight struct {
	span SeqRange
	out  sent // set by the batch's goroutine before it sends on done
}

func newPipeline(ctx context.Context, proc *processor, maxInFlight int) *pipeline {
	return &pipeline{
		proc:    proc,
		ctx:     ctx,
		max:     maxInFlight,
		flights: make(map[*flight]struct{}, maxInFlight),
		done:    make(chan *flight, maxInFlight),
	}
}

// len returns how many batches are in flight or wait to be settled.
func (pl *pipeline) len() int { return len(pl.flights) }

// full reports whether no further batch may start.
func (pl *pipeline) full() bool { return len(pl.flights) >= pl.max }

// inFlight spans the sequence numbers of every batch not yet settled
// (the zero SeqRange when there is none).
func (pl *pipeline) inFlight() SeqRange {
	var r SeqRange
	for f := range pl.flights {
		if r.Empty() {
			r = f.span
			continue
		}
		r.From, r.To = min(r.From, f.span.From), max(r.To, f.span.To)
	}
	return r
}

// start publishes b on a goroutine of its own.
func (pl *pipeline) start(b batch) {
	f := &flight{span: SeqRange{From: b.items[0].Seq, To: b.items[0].Seq}}
	for _, it := range b.items[1:] {
		f.span.From, f.span.To = min(f.span.From, it.Seq), max(f.span.To, it.Seq)
	}
	pl.flights[f] = struct{}{}
	pl.wg.Go(func() {
		f.out = pl.proc.publishBatch(pl.ctx, b)
		pl.done <- f // buffered for max batches: never blocks
	})
}

// completed receives each batch whose publishing finished.
func (pl *pipeline) completed() <-chan *flight { return pl.done }

// settle records first and every other batch that has finished by now
// (one MarkPublished and one MarkAttempts for all of them) and removes
// them from the pipeline.
func (pl *pipeline) settle(ctx context.Context, first *flight) (batchResult, error) {
	batches := []sent{first.out}
	delete(pl.flights, first)
	for {
		select {
		case f := <-pl.done:
			batches = append(batches, f.out)
			delete(pl.flights, f)
			continue
		default:
		}
		break
	}
	return pl.proc.settle(ctx, batches...)
}

// settleAll waits for every batch in flight and records them, for a
// relay that stops: it returns what they published and the first error.
func (pl *pipeline) settleAll(ctx context.Context) (batchResult, error) {
	var (
		total batchResult
		first error
	)
	for pl.len() > 0 {
		res, err := pl.settle(ctx, <-pl.done)
		total.published += res.published
		total.failed += res.failed
		if first == nil {
			first = err
		}
	}
	return total, first
}

// abandon waits for the batches' goroutines (their context is cancelled)
// and forgets them without recording anything: their events stay pending
// and are published again by the next leader.
func (pl *pipeline) abandon() {
	pl.wg.Wait()
	for len(pl.done) > 0 {
		<-pl.done
	}
	clear(pl.flights)
}
