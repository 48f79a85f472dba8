package eventbus

import (
	"context"
	"log/slog"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// BatchTransport is a [Transport] that can hand a consumer the messages
// of one partition in batches. A [Router] on such a transport consumes
// every handler name registered with [HandleOnce] through
// [BatchTransport.ConsumeBatches]: one [Inbox.ProcessBatch] — with the
// PostgreSQL inbox one transaction — per batch, instead of one per
// event. The Client of package [github.com/dddkit/dddkit/kafka]
// implements it; [MemoryTransport] does not (its consumers take one
// message at a time). See "Batches" in the package documentation.
type BatchTransport interface {
	Transport

	// ConsumeBatches consumes sub.Topic as consumer group sub.Group
	// until ctx ends, and then returns nil (an error only when it cannot
	// start). It hands sub.Handle the messages of one partition in
	// their order, in batches of at most sub.MaxBatch: what has arrived
	// when a batch's first message is taken, and what arrives within
	// sub.MaxWait after it when that is above zero; batches of
	// different partitions may be handled concurrently, those of one
	// partition one after the other. A message counts as consumed (its
	// offset may be committed) once Handle has called done for it or a
	// later message of its batch; when Handle reports false, the
	// messages not done are delivered again, to this consumer or, after
	// a rebalance, another member of the group.
	ConsumeBatches(ctx context.Context, sub BatchSubscription) error
}

// BatchSubscription is one consumer a [Router] runs on a
// [BatchTransport].
type BatchSubscription struct {
	// Group is the consumer group: the handler name.
	Group string
	// Topic is the topic to consume.
	Topic string
	// MaxBatch is the most messages of one batch (at least 1).
	MaxBatch int
	// MaxWait is how long a batch waits for more messages after its
	// first one; 0 takes only what has arrived.
	MaxWait time.Duration
	// Logger receives the consumer's log lines (errors of the group).
	Logger *slog.Logger
	// Handle handles each batch.
	Handle BatchHandler
}

// BatchHandler handles batch, consecutive messages of one partition in
// their order, and calls done(i) when batch[i] and every message before
// it are handled for good (applied, skipped or dead-lettered). It
// reports false when ctx ended first; the messages not done are then to
// be delivered again.
type BatchHandler func(ctx context.Context, batch []*message.Message, done func(i int)) bool

// batchItem is one message of a consumer, decoded.
type batchItem struct {
	msg *message.Message
	env aggregate.Envelope // env.Payload nil: acknowledge without handling
	err error              // cannot be handled: dead-letter (after retries)
}

// decode turns msg into an item: the envelope with the decoded event of
// one of the consumer's types, without payload for a message to
// acknowledge without handling, or the error that keeps it from being
// handled.
func (c *consumer) decode(ctx context.Context, msg *message.Message) batchItem {
	msg.SetContext(ctx)
	it := batchItem{msg: msg}
	env, version, err := readEnvelope(msg)
	it.env = env
	if err != nil {
		it.err = err
		return it
	}
	en, ok := c.entries[env.Name]
	if !ok {
		it.err = notHandled(ctx, c.r.reg, c.r.logger, c.r.cfg.UnknownEvents, c.r.cfg.SkipLogLevel, c.name, c.topic, env)
		return it
	}
	it.env.Payload, it.err = en.et.decodePayload(env.ID, version, msg.Payload)
	return it
}

// handle is the watermill handler of a consumer that takes one message
// at a time (a [Handle] handler, or any handler on a transport that is no
// [BatchTransport]). An error nacks the message: it comes again.
func (c *consumer) handle(msg *message.Message) (err error) {
	ctx := withHandler(msg.Context(), c.name)
	taken, err := c.park.admit(ctx, msg, c.applyReleased(ctx))
	if err != nil {
		return err // stopping: the message comes again
	}
	if taken {
		return nil // parked behind its key's dead letter, or a release
	}
	it := c.decode(ctx, msg)
	ctx, span := startProcess(ctx, telemetry.System(c.r.transport), c.name, c.topic, it.env)
	defer func() { telemetry.End(span, err) }()
	if !c.processOne(ctx, nil, it, nil) {
		return errShutdown
	}
	return nil
}

// applyReleased returns how the events of a released key are handled:
// each one as [consumer.processOne] would, its failure for good returned
// (the key's parking makes it the new dead letter) instead of
// dead-lettered here.
func (c *consumer) applyReleased(ctx context.Context) func(*message.Message) error {
	return func(msg *message.Message) error {
		it := c.decode(ctx, msg)
		if it.err == nil && it.env.Payload == nil {
			return nil // not for this consumer
		}
		return c.attempt(ctx, it, nil)
	}
}

// processBatch is the [BatchHandler] of a consumer with an inbox on a
// [BatchTransport]. Each run of messages that decoded goes through
// [consumer.applyBatch]: one [Inbox.ProcessBatch]. When a handler fails
// in it, the events before the failing one are applied again as a batch,
// the failing one goes on alone through [consumer.processOne] (its
// attempt in the batch counting as its first), and the events after it
// form the next batch; after a failure that is no one event's (the
// transaction did not begin or commit, a statement queued for the commit
// failed) the run's events are handled one at a time. Messages
// that did not decode go through processOne too (to the dead-letter
// topic) without holding up the others.
func (c *consumer) processBatch(ctx context.Context, batch []*message.Message, done func(i int)) bool {
	ctx = withHandler(ctx, c.name)
	ctx, span := startBatch(ctx, telemetry.System(c.r.transport), c.name, c.topic, batch)
	defer span.End()
	lot, err := c.park.lot(ctx, batch)
	if err != nil {
		return false // stopping
	}
	items := make([]batchItem, len(batch))
	for k, m := range batch {
		items[k] = c.decode(ctx, m)
	}
	for from := 0; from < len(items); {
		it := items[from]
		if lot.holds(it.msg) {
			// A release, or an event of a key parked behind its dead
			// letter: through the parking, one at a time.
			taken, err := lot.admit(ctx, it.msg, c.applyReleased(ctx))
			if err != nil {
				return false
			}
			if !taken && !c.processOne(ctx, lot, it, nil) {
				return false
			}
			done(from)
			from++
			continue
		}
		if it.err != nil {
			if !c.processOne(ctx, lot, it, nil) {
				return false
			}
			done(from)
			from++
			continue
		}
		to := from + 1
		for to < len(items) && items[to].err == nil && !lot.holds(items[to].msg) {
			to++
		}
		n, ok := c.processRun(ctx, lot, items[from:to], from, done)
		if !ok {
			return false
		}
		from += n
	}
	return true
}

// processRun applies run, items that decoded (run[0] is the batch's
// item base), in batches, singling out the events that fail; see
// [consumer.processBatch]. It returns how many items of run it went
// through: all of them, or up to one that was dead-lettered (the later
// items of its key are to be parked, so the caller looks at them again).
// It reports false when ctx ended first.
func (c *consumer) processRun(ctx context.Context, lot *lot, run []batchItem, base int, done func(i int)) (int, bool) {
	n := 0
	for len(run) > 0 {
		k, err := c.applyBatch(ctx, run)
		if err == nil {
			consumers.handledItems(ctx, c.name, c.topic, run)
			done(base + len(run) - 1)
			return n + len(run), true
		}
		if ctx.Err() != nil {
			return n, false
		}
		if k < 0 {
			// Not one event's failure (the transaction did not begin
			// or commit, a queued statement failed): one at a time.
			c.r.logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: batch failed, handling its events one by one",
				slog.String("handler", c.name), slog.Int("events", len(run)), slog.Any("error", err))
			for i := range run {
				if lot.holds(run[i].msg) {
					return n + i, true // parked behind a dead letter of this run
				}
				if !c.processOne(ctx, lot, run[i], nil) {
					return n, false
				}
				done(base + i)
			}
			return n + len(run), true
		}
		c.r.logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: batch failed, handling its failing event alone",
			slog.String("handler", c.name), slog.Int("events", len(run)), slog.Int("failed_at", k), slog.Any("error", err))
		if k > 0 {
			m, ok := c.processRun(ctx, lot, run[:k], base, done)
			if !ok {
				return n, false
			}
			if m < k {
				return n + m, true
			}
		}
		if !c.processOne(ctx, lot, run[k], err) {
			return n, false
		}
		done(base + k)
		if lot.holds(run[k].msg) {
			return n + k + 1, true // dead-lettered: its key's later events park
		}
		run, base, n = run[k+1:], base+k+1, n+k+1
	}
	return n, true
}

// applyBatch is the per-batch apply: one [Inbox.ProcessBatch] for the
// events of run that are to be handled, each new one applied with
// [consumer.apply] in its transaction. When a handler fails it reports
// the index in run of its event and its error; -1 with a failure that is
// no one event's. Any error leaves nothing behind.
func (c *consumer) applyBatch(ctx context.Context, run []batchItem) (failed int, err error) {
	envs := make([]aggregate.Envelope, 0, len(run))
	at := make(map[string]int, len(run))
	for i, it := range run {
		if it.env.Payload == nil {
			continue
		}
		if _, dup := at[it.env.ID]; !dup {
			at[it.env.ID] = i
		}
		envs = append(envs, it.env)
	}
	if len(envs) == 0 {
		return -1, nil
	}
	failed = -1
	var cause error
	err = c.inbox.ProcessBatch(ctx, c.name, envs, func(ctx context.Context, fresh []aggregate.Envelope) error {
		for _, env := range fresh {
			i := at[env.ID]
			if err := c.apply(ctx, run[i]); err != nil {
				failed, cause = i, err
				return err
			}
		}
		return nil
	})
	if err != nil && failed >= 0 {
		return failed, cause
	}
	return -1, err
}

// processOne handles one message on its own through
// [consumer.attempt], and makes it its key's dead letter
// ([consumer.giveUp]) when it fails for good. lot is the batch's
// view of parked keys, nil outside batches. It reports false when ctx
// ended first: the message is to be delivered again.
func (c *consumer) processOne(ctx context.Context, lot *lot, it batchItem, prior error) bool {
	if it.err == nil && it.env.Payload == nil {
		return true // not for this consumer: acknowledged
	}
	err := c.attempt(ctx, it, prior)
	switch {
	case err == nil:
		consumers.handled(ctx, c.name, c.topic, it.env)
		return true
	case !deadLetterable(err):
		return false // stopping
	}
	return c.giveUp(ctx, lot, it.msg, err)
}

// attempt runs the handler of one message through [consumer.applyOne],
// retried as [RouterConfig.Retry] says (a message that did not decode
// fails at once), and returns the last error. prior is the error of an
// attempt already made (in a batch), which counts as the first; nil if
// none.
func (c *consumer) attempt(ctx context.Context, it batchItem, prior error) error {
	handle := c.retry(func(*message.Message) ([]*message.Message, error) {
		if prior != nil {
			err := prior
			prior = nil
			return nil, err
		}
		if it.err != nil {
			return nil, it.err
		}
		return nil, c.applyOne(ctx, it)
	})
	it.msg.SetContext(ctx)
	_, err := handle(it.msg)
	return err
}

// applyOne is the per-message apply: the handler of it's event through
// [consumer.apply], in an [Inbox.Process] of its own when the consumer
// has an inbox (a duplicate is acknowledged without running it).
func (c *consumer) applyOne(ctx context.Context, it batchItem) error {
	if c.inbox == nil {
		return c.apply(ctx, it)
	}
	ctx = aggregate.ContextWithMetadata(ctx, aggregate.CausedBy(it.env))
	_, err := c.inbox.Process(ctx, c.name, it.env, func(ctx context.Context) error {
		return c.apply(ctx, it)
	})
	return err
}

// apply runs the handler function of it's event with ctx (in the inbox's
// transaction when there is one) and the event's metadata for what it
// causes, through [RouterConfig.Middleware] and the panic recovery. In
// batches and one at a time, every run of a handler function goes
// through here.
func (c *consumer) apply(ctx context.Context, it batchItem) error {
	fn := c.entries[it.env.Name].fn
	h := recoverMiddleware(func(msg *message.Message) ([]*message.Message, error) {
		return nil, fn(aggregate.ContextWithMetadata(msg.Context(), aggregate.CausedBy(it.env)), it.env)
	})
	for i := len(c.r.cfg.Middleware) - 1; i >= 0; i-- {
		h = c.r.cfg.Middleware[i](h)
	}
	it.msg.SetContext(ctx)
	_, err := h(it.msg)
	return err
}

// giveUp makes msg, which failed for good with cause, the dead
// letter of its key: recorded in [RouterConfig.DeadLetters] (the key's
// later events park behind it) and a copy published to the consumer's
// dead-letter topic, retrying until both succeed or ctx ends (then it
// reports false, and the message is delivered again). lot, when not nil,
// learns that the key is parked. It is the one place where a consumer
// gives up on a message, in batches and one at a time.
func (c *consumer) giveUp(ctx context.Context, lot *lot, msg *message.Message, cause error) bool {
	var err error
	if lot != nil {
		err = lot.deadLetter(ctx, msg, cause)
	} else {
		err = c.park.deadLetter(ctx, msg, cause)
	}
	if err != nil {
		return false
	}
	consumers.deadLettered(ctx, c.name, c.topic)
	return true
}

// handlerKey is the context key of [HandlerName].
type handlerKey struct{}

// withHandler returns ctx naming handler.
func withHandler(ctx context.Context, handler string) context.Context {
	return context.WithValue(ctx, handlerKey{}, handler)
}

// HandlerName returns the name of the handler whose message ctx belongs
// to: the name given to [Handle] or [HandleOnce], in a handler function
// and in [RouterConfig.Middleware] (msg.Context()); "" elsewhere.
func HandlerName(ctx context.Context) string {
	s, _ := ctx.Value(handlerKey{}).(string)
	return s
}
