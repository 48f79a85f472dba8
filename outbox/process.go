package outbox

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/telemetry"
	"github.com/dddkit/dddkit/internal/wire"
)

// This file holds the [Relay]'s publishing logic: a [Source] hands out
// eligible events in order, the processor publishes them and reports back
// which were acknowledged and which failed.

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
	src Source
	reg *eventbus.Registry
	pub message.Publisher
	cfg *RelayConfig
}

type batchResult struct {
	fetched   int
	published int
	failed    int           // attempts recorded
	retryIn   time.Duration // smallest retry delay scheduled; 0 when none
}

// batch runs one fetch → publish → mark cycle.
func (p *processor) batch(ctx context.Context) (batchResult, error) {
	var res batchResult
	items, err := p.src.Fetch(ctx, p.cfg.BatchSize)
	if err != nil {
		return res, err
	}
	res.fetched = len(items)
	if len(items) == 0 {
		return res, nil
	}

	// Group by topic, keeping sequence order inside each group.
	type group struct {
		topic string
		idx   []int
	}
	var groups []group
	byTopic := make(map[string]int, 1)
	for i := range items {
		topic := p.reg.Topic(items[i].Event.AggregateType)
		gi, ok := byTopic[topic]
		if !ok {
			gi = len(groups)
			byTopic[topic] = gi
			groups = append(groups, group{topic: topic})
		}
		groups[gi].idx = append(groups[gi].idx, i)
	}

	var (
		ok       = make([]int64, 0, len(items))
		attempts []Attempt
		outage   bool
	)
	// The topic rule maps an aggregate type to one topic, so the events of
	// one aggregate are all in one group: a group's failures hold back no
	// other group.
	for _, g := range groups {
		if ctx.Err() != nil {
			break
		}
		done, failed, out := p.publishGroup(ctx, g.topic, items, g.idx)
		ok = append(ok, done...)
		attempts = append(attempts, failed...)
		if out {
			outage = true
			break
		}
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

// publishGroup publishes the events items[idx] (one topic) in one call.
// When that fails it isolates the failure: it publishes aggregate by
// aggregate, and inside a failing aggregate event by event, so that the
// event that fails gets the attempt while the other aggregates go out. It
// returns the published sequence numbers, the attempts to record, and
// whether it stopped because everything fails (an outage).
func (p *processor) publishGroup(ctx context.Context, topic string, items []Pending, idx []int) (ok []int64, attempts []Attempt, outage bool) {
	err := p.publish(ctx, topic, items, idx)
	if err == nil {
		return seqsOf(items, idx), nil, false
	}
	if ctx.Err() != nil {
		return nil, nil, false // abandoned: everything stays pending
	}
	p.hookPublishError(err, len(idx))

	aggs := splitByAggregate(items, idx)
	successes, failsInRow := 0, 0
	for _, aIdx := range aggs {
		if ctx.Err() != nil {
			return ok, attempts, false
		}
		aggErr := err // with a single aggregate, the call above was its call
		if len(aggs) > 1 {
			if aggErr = p.publish(ctx, topic, items, aIdx); aggErr == nil {
				ok = append(ok, seqsOf(items, aIdx)...)
				successes++
				failsInRow = 0
				continue
			}
			if ctx.Err() != nil {
				return ok, attempts, false
			}
			p.hookPublishError(aggErr, len(aIdx))
		}
		// Event by event, to find the one that fails; the later events
		// of this aggregate wait behind it.
		progressed := false
		for k, i := range aIdx {
			evErr := aggErr // with a single event, the call above was its call
			if len(aIdx) > 1 {
				if evErr = p.publish(ctx, topic, items, aIdx[k:k+1]); evErr == nil {
					ok = append(ok, items[i].Seq)
					progressed = true
					continue
				}
				if ctx.Err() != nil {
					return ok, attempts, false
				}
				p.hookPublishError(evErr, 1)
			}
			attempts = append(attempts, p.attemptFor(items[i], evErr))
			break
		}
		if progressed {
			successes++
			failsInRow = 0
		} else {
			failsInRow++
		}
		if successes == 0 && failsInRow >= outageThreshold {
			return ok, attempts, true
		}
	}
	return ok, attempts, false
}

type aggKey struct{ typ, id string }

func keyOf(it Pending) aggKey { return aggKey{it.Event.AggregateType, it.Event.AggregateID} }

// splitByAggregate groups idx by aggregate, in order of first appearance,
// keeping sequence order inside each group.
func splitByAggregate(items []Pending, idx []int) [][]int {
	pos := make(map[aggKey]int)
	var out [][]int
	for _, i := range idx {
		k := keyOf(items[i])
		n, seen := pos[k]
		if !seen {
			n = len(out)
			pos[k] = n
			out = append(out, nil)
		}
		out[n] = append(out[n], i)
	}
	return out
}

func (p *processor) attemptFor(it Pending, err error) Attempt {
	a := Attempt{Seq: it.Seq, Attempts: it.Attempts + 1, Err: err.Error()}
	if a.Attempts >= p.cfg.Retry.MaxAttempts {
		a.Final = true
	} else {
		a.Delay = max(p.cfg.Retry.Delay(a.Attempts), 0)
	}
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
	msgs := make([]*message.Message, len(idx))
	for n, i := range idx {
		msgs[n] = wire.ToMessage(items[i].Event, p.reg.Source(), items[i].Payload, items[i].SchemaVersion)
	}
	start := time.Now()
	if cp, ok := p.pub.(ContextPublisher); ok {
		err = cp.PublishContext(ctx, topic, msgs...)
	} else {
		err = p.pub.Publish(topic, msgs...)
	}
	if err != nil {
		return err
	}
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
