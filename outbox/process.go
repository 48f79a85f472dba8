package outbox

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/internal/telemetry"
	"github.com/dddkit/dddkit/internal/wire"
)

// This file holds the [Relay]'s publishing logic: a [Source] hands out
// eligible events in order (fetch), the processor publishes a batch of
// them (publishBatch, several batches at once in a pipeline) and records
// which were acknowledged and which failed (settle).

// ContextPublisher is implemented by publishers whose publish call can be
// abandoned through a context, such as the publisher of a kafka.Client.
// The relay uses it when available so that Run stops promptly.
type ContextPublisher interface {
	PublishContext(ctx context.Context, topic string, msgs ...*message.Message) error
}

// errOutage reports that every publish of a batch failed: the publisher or
// its broker is probably down, and the relay backs off.
var errOutage = errors.New("outbox: publisher is failing for several aggregates in a row")

// outageThreshold is the number of aggregates in a row whose isolated
// publish must fail, with none succeeding, before a batch is given up as
// an outage.
const outageThreshold = 3

type processor struct {
	src     Source
	reg     *eventbus.Registry
	pub     message.Publisher
	cfg     *RelayConfig
	metrics *relayMetrics
	// limit is how many events the next fetch reads (0: BatchSize).
	limit int
	// seen is waveRanks's, kept from one fetch to the next (cleared, it
	// keeps its room: a batch's map is not allocated again).
	seen map[aggstore.Key]int32
}

// batchResult is what settling one or more published batches recorded.
type batchResult struct {
	published int
	failed    int           // attempts recorded
	retryIn   time.Duration // smallest retry delay scheduled; 0 when none
}

// fetch reads the next batch, none of its events in, or held back by,
// the batches in flight, and reports whether it is full (more may be
// waiting). It reads BatchSize events, or more after a full batch whose
// aggregates had several events each: a batch is published in one
// publisher call per event of an aggregate (publishGroup), so a batch
// of BatchSize rows holding 10 events per aggregate would make 10 calls
// of a tenth of BatchSize each. The next fetch reads BatchSize times the
// events per aggregate of the last one (rounded up, at most
// maxBatchSize), so that each call carries about BatchSize events again.
// A fetch beside batches in flight that reads nothing leaves that size
// as it is.
func (p *processor) fetch(ctx context.Context, inFlight SeqRange) (b batch, full bool, err error) {
	limit := max(p.limit, p.cfg.BatchSize)
	b.items, err = p.src.Fetch(ctx, limit, inFlight)
	if err != nil {
		return batch{}, false, err
	}
	var aggregates int
	if p.seen == nil {
		p.seen = make(map[aggstore.Key]int32, len(b.items))
	}
	b.rank, aggregates = waveRanks(b.items, p.seen)
	full = len(b.items) >= limit
	switch {
	case full:
		// BatchSize times the mean number of events per aggregate,
		// rounded up.
		perAggregate := (len(b.items) + aggregates - 1) / max(aggregates, 1)
		p.limit = min(p.cfg.BatchSize*perAggregate, maxBatchSize)
	case len(b.items) == 0 && !inFlight.Empty():
		// Nothing beside the batches in flight (a Source that does not
		// read beside them, such as a PostgreSQL relay leading a few of
		// the shards, or every pending event held back by them): the
		// next fetch, once they are recorded, keeps the size the last
		// full batch asked for.
	default:
		p.limit = p.cfg.BatchSize
	}
	return b, full, nil
}

// batch is a fetched batch: its events, in sequence order, and the wave
// of each (waveRanks).
type batch struct {
	items []Pending
	rank  []int32
}

// sent is the outcome of publishing one batch, to be recorded by settle.
type sent struct {
	ok       []int64   // acknowledged
	attempts []Attempt // failed, to record
	outage   bool      // gave up: the publisher fails for everything
}

// publishBatch publishes one fetched batch, each topic's share in one
// publisher call, isolating failures (publishGroup). It makes no Source
// call, so that several batches can be published at once.
func (p *processor) publishBatch(ctx context.Context, b batch) sent {
	items := b.items
	var out sent
	if len(items) == 0 {
		return out
	}
	// Group by topic, keeping sequence order inside each group.
	type group struct {
		topic string
		idx   []int
	}
	var groups []group
	byTopic := make(map[string]int, 1)
	lastType, gi := "", -1
	for i := range items {
		// A batch's events are mostly of one aggregate type, or a few:
		// the topic rule runs when the type changes.
		if typ := items[i].Event.AggregateType; gi < 0 || typ != lastType {
			topic := p.reg.Topic(typ)
			var ok bool
			if gi, ok = byTopic[topic]; !ok {
				gi = len(groups)
				byTopic[topic] = gi
				g := group{topic: topic}
				if gi == 0 {
					g.idx = make([]int, 0, len(items)) // mostly the whole batch
				}
				groups = append(groups, g)
			}
			lastType = typ
		}
		groups[gi].idx = append(groups[gi].idx, i)
	}
	out.ok = make([]int64, 0, len(items))
	// The topic rule maps an aggregate type to one topic, so the events of
	// one aggregate are all in one group: a group's failures hold back no
	// other group.
	for _, g := range groups {
		if ctx.Err() != nil {
			break
		}
		done, failed, outage := p.publishGroup(ctx, g.topic, items, g.idx, b.rank)
		out.ok = append(out.ok, done...)
		out.attempts = append(out.attempts, failed...)
		if outage {
			out.outage = true
			break
		}
	}
	return out
}

// settle records in the Source what publishing batches achieved: the
// acknowledged events as published (one MarkPublished for all of them),
// the failed attempts (one MarkAttempts). It returns [errOutage] (joined)
// when a batch gave up on an outage.
func (p *processor) settle(ctx context.Context, batches ...sent) (batchResult, error) {
	var (
		res      batchResult
		ok       []int64
		attempts []Attempt
		outage   bool
	)
	for _, b := range batches {
		ok = append(ok, b.ok...)
		attempts = append(attempts, b.attempts...)
		outage = outage || b.outage
	}
	var errs []error
	if len(ok) > 0 {
		if err := p.src.MarkPublished(ctx, ok); err != nil {
			errs = append(errs, err)
		} else {
			res.published = len(ok)
		}
	}
	if len(attempts) > 0 {
		if err := p.src.MarkAttempts(ctx, attempts); err != nil {
			errs = append(errs, err)
		} else {
			res.failed = len(attempts)
			for _, a := range attempts {
				if !a.Final && (res.retryIn == 0 || a.Delay < res.retryIn) {
					res.retryIn = a.Delay
				}
			}
		}
	}
	if outage {
		errs = append(errs, errOutage)
	}
	return res, errors.Join(errs...)
}

// publishGroup publishes the events items[idx] (one topic, in sequence
// order) in waves: the first event of every aggregate in one publisher
// call, then, once that call returned, the second event of every
// aggregate whose first was acknowledged, and so on. A call never carries
// two events of one aggregate, because a producer may fail one message
// and still write the later ones it was handed with it (sarama fails a
// message whose partition has no reachable leader and goes on with the
// next, and gives up on a message after its retries while later ones
// still have theirs): an aggregate's later event must not be handed over
// before the earlier one is acknowledged. With one event per aggregate in
// a batch, the common case, a group is one call.
//
// It returns the published sequence numbers, the attempts to record, and
// whether it stopped because everything fails (an outage).
func (p *processor) publishGroup(ctx context.Context, topic string, items []Pending, idx []int, rank []int32) (ok []int64, attempts []Attempt, outage bool) {
	waves := int32(0)
	for _, i := range idx {
		waves = max(waves, rank[i]+1)
	}
	if waves == 1 {
		return p.publishWave(ctx, topic, items, idx)
	}
	var held map[aggstore.Key]bool // aggregates whose event failed
	wave := make([]int, 0, len(idx))
	for k := range waves {
		wave = wave[:0]
		for _, i := range idx {
			if rank[i] == k && (len(held) == 0 || !held[keyOf(items[i])]) {
				wave = append(wave, i)
			}
		}
		if len(wave) == 0 {
			continue
		}
		done, failed, out := p.publishWave(ctx, topic, items, wave)
		ok = append(ok, done...)
		attempts = append(attempts, failed...)
		if out || ctx.Err() != nil {
			return ok, attempts, out
		}
		// An aggregate whose event failed waits behind it: leave it out
		// of the later waves.
		if len(failed) > 0 {
			bad := make(map[int64]bool, len(failed))
			for _, a := range failed {
				bad[a.Seq] = true
			}
			if held == nil {
				held = make(map[aggstore.Key]bool, len(failed))
			}
			for _, i := range wave {
				if bad[items[i].Seq] {
					held[keyOf(items[i])] = true
				}
			}
		}
	}
	return ok, attempts, false
}

// publishWave publishes items[wave], at most one event per aggregate, in
// one call. When that fails it isolates the failure: it publishes event
// by event, so that each event that fails gets its attempt while the
// other aggregates' go out, and gives up when several in a row fail with
// none succeeding (an outage).
func (p *processor) publishWave(ctx context.Context, topic string, items []Pending, wave []int) (ok []int64, attempts []Attempt, outage bool) {
	err := p.publish(ctx, topic, items, wave)
	if err == nil {
		return seqsOf(items, wave), nil, false
	}
	if ctx.Err() != nil {
		return nil, nil, false // abandoned: everything stays pending
	}
	p.hookPublishError(err, len(wave))
	if len(wave) == 1 {
		return nil, []Attempt{p.attemptFor(items[wave[0]], err)}, false
	}
	successes, failsInRow := 0, 0
	for n := range wave {
		evErr := p.publish(ctx, topic, items, wave[n:n+1])
		if evErr == nil {
			ok = append(ok, items[wave[n]].Seq)
			successes++
			failsInRow = 0
			continue
		}
		if ctx.Err() != nil {
			return ok, attempts, false
		}
		p.hookPublishError(evErr, 1)
		attempts = append(attempts, p.attemptFor(items[wave[n]], evErr))
		failsInRow++
		if successes == 0 && failsInRow >= outageThreshold {
			return ok, attempts, true
		}
	}
	return ok, attempts, false
}

func keyOf(it Pending) aggstore.Key { return aggstore.KeyOf(&it.Event) }

// waveRanks returns, for each of items, how many earlier items of its
// aggregate the batch holds: its wave (publishGroup); and how many
// aggregates the batch holds. It counts in seen, which it clears first.
func waveRanks(items []Pending, seen map[aggstore.Key]int32) (rank []int32, aggregates int) {
	clear(seen)
	rank = make([]int32, len(items))
	for i := range items {
		k := keyOf(items[i])
		rank[i] = seen[k]
		seen[k] = rank[i] + 1
	}
	n := len(seen)
	clear(seen) // keep no event's strings alive
	return rank, n
}

func (p *processor) attemptFor(it Pending, err error) Attempt {
	a := Attempt{Seq: it.Seq, Attempts: it.Attempts + 1, Err: err.Error()}
	if a.Attempts >= p.cfg.Retry.MaxAttempts {
		a.Final = true
	} else {
		a.Delay = max(p.cfg.Retry.Delay(a.Attempts), 0)
	}
	p.metrics.attemptFailed(it.Event.AggregateType, a.Final)
	if h := p.cfg.Hooks.OnAttemptFailed; h != nil {
		h(AttemptFailure{Event: it.Event, Attempts: a.Attempts, Final: a.Final, Err: err, RetryIn: a.Delay})
	}
	lvl := "retry"
	if a.Final {
		lvl = "failed"
	}
	p.cfg.Logger.Warn("outbox: publish attempt failed", "event_id", it.Event.ID, "event", it.Event.Name,
		"aggregate_type", it.Event.AggregateType, "aggregate_id", it.Event.AggregateID, "version", it.Event.Version,
		"attempts", a.Attempts, "outcome", lvl, "retry_in", a.Delay, "error", err)
	return a
}

func (p *processor) hookPublishError(err error, n int) {
	if h := p.cfg.Hooks.OnPublishError; h != nil {
		h(err, n)
	}
}

// publish sends items[idx] to topic in one publisher call.
func (p *processor) publish(ctx context.Context, topic string, items []Pending, idx []int) (err error) {
	ctx, span := startPublish(ctx, p.pub, topic, items, idx)
	defer func() { telemetry.End(span, err) }()
	start := time.Now()
	if ep, ok := p.pub.(wire.EventPublisher); ok {
		// The kafka package's publisher: records straight from the events.
		evs := make([]wire.Event, len(idx))
		for n, i := range idx {
			evs[n] = wire.Event{Envelope: &items[i].Event, Payload: items[i].Payload, SchemaVersion: items[i].SchemaVersion}
		}
		err = ep.PublishEvents(ctx, topic, p.reg.Source(), evs)
	} else {
		msgs := make([]*message.Message, len(idx))
		for n, i := range idx {
			msgs[n] = wire.ToMessage(items[i].Event, p.reg.Source(), items[i].Payload, items[i].SchemaVersion)
		}
		if cp, ok := p.pub.(ContextPublisher); ok {
			err = cp.PublishContext(ctx, topic, msgs...)
		} else {
			err = p.pub.Publish(topic, msgs...)
		}
	}
	if err != nil {
		return err
	}
	p.metrics.published(topic, len(idx), time.Since(start))
	if h := p.cfg.Hooks.OnPublished; h != nil {
		envs := make([]aggregate.Envelope, len(idx))
		for n, i := range idx {
			envs[n] = items[i].Event
		}
		h(envs, time.Since(start))
	}
	return nil
}

func seqsOf(items []Pending, idx []int) []int64 {
	out := make([]int64, len(idx))
	for n, i := range idx {
		out[n] = items[i].Seq
	}
	return out
}
