package projection

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

// Subscribe runs p on the event bus: it registers p's event types on r
// with [eventbus.HandleOnce], so that inbox makes each event's effects
// happen once, in one transaction with the inbox record (with the
// PostgreSQL inbox, a unit of work the read model's SQL joins). The
// handlers run in a [Store.Do] of store that joins the inbox's
// transaction: with the PostgreSQL store (give it the inbox's
// database), statements queued with postgres.QueueExec are sent in one
// round trip; with the [MemoryStore], writes staged with [OnCommit] are
// kept only when the event is recorded in the inbox. Events
// of one topic are one consumer named after the projection, so one
// aggregate's events arrive in order; when p's types are on several
// topics, each topic is a consumer named "<name>@<topic>". On Kafka (an
// [eventbus.BatchTransport]) each batch of a partition — up to
// [eventbus.RouterConfig] MaxBatch events — is applied in one
// [eventbus.Inbox.ProcessBatch]: with the PostgreSQL inbox one
// transaction holding the read model's writes and the inbox rows.
//
// On the bus an event that keeps failing goes to the dead-letter topic
// after the router's retries (the bus's rule: one poison message does
// not stop the topic), and the read model lacks it until it is replayed
// from there. A projection that must never skip an event runs on the
// event store's stream ([Runner]), where a failing event stops it.
// Rebuilding is done from the stream too: topics may be compacted or
// expired.
func (p *Projection) Subscribe(r *eventbus.Router, inbox eventbus.Inbox, store Store) error {
	if err := p.checkDeclared(); err != nil {
		return err
	}
	if r == nil || inbox == nil || store == nil {
		return fmt.Errorf("projection %q: Subscribe needs a Router, an Inbox and a Store", p.name)
	}
	in := p.busInbox(inbox, store)
	for topic, names := range p.topics() {
		for _, name := range names {
			if err := p.handlers[name].handleOnce(r, p.consumerName(topic), in); err != nil {
				return fmt.Errorf("projection %q: %w", p.name, err)
			}
		}
	}
	return nil
}

// topics groups the declared event names by topic.
func (p *Projection) topics() map[string][]string {
	out := make(map[string][]string)
	for _, name := range p.order {
		t := p.handlers[name].typ.Topic
		out[t] = append(out[t], name)
	}
	return out
}

// consumerName is the consumer (group and inbox handler) of topic.
func (p *Projection) consumerName(topic string) string {
	if len(p.topics()) == 1 {
		return p.name
	}
	return p.name + "@" + topic
}

// BusStatus is how a projection running on the event bus is doing in
// this process (the consumers' offsets are the Kafka consumer groups').
type BusStatus struct {
	// Applied counts the events whose effects this process committed.
	Applied int64
	// LastEventAt is when the last of them occurred.
	LastEventAt time.Time
	// LastError is the last error of a batch or event ("" after a
	// success); LastErrorAt is when it happened.
	LastError   string
	LastErrorAt time.Time
}

// busStats is the mutable BusStatus of a projection.
type busStats struct {
	mu sync.Mutex
	st BusStatus
}

// BusStatus returns the status of p on the event bus in this process.
func (p *Projection) BusStatus() BusStatus {
	p.bus.mu.Lock()
	defer p.bus.mu.Unlock()
	return p.bus.st
}

func (p *Projection) busInbox(in eventbus.Inbox, store Store) eventbus.Inbox {
	return &busInbox{Inbox: in, store: store, p: p}
}

// busInbox runs the handlers of the inbox's transactions in a Do of the
// store and keeps the BusStatus of the projection it serves.
type busInbox struct {
	eventbus.Inbox
	store Store
	p     *Projection
}

func (c *busInbox) Process(ctx context.Context, handler string, env aggregate.Envelope, fn func(ctx context.Context) error) (bool, error) {
	applied, err := c.Inbox.Process(ctx, handler, env, func(ctx context.Context) error {
		return c.store.Do(ctx, fn)
	})
	if applied {
		c.done([]aggregate.Envelope{env})
	}
	c.failed(err)
	return applied, err
}

func (c *busInbox) ProcessBatch(ctx context.Context, handler string, envs []aggregate.Envelope, fn func(ctx context.Context, fresh []aggregate.Envelope) error) error {
	var fresh []aggregate.Envelope
	err := c.Inbox.ProcessBatch(ctx, handler, envs, func(ctx context.Context, f []aggregate.Envelope) error {
		fresh = f
		return c.store.Do(ctx, func(ctx context.Context) error { return fn(ctx, f) })
	})
	if err == nil {
		c.done(fresh)
	}
	c.failed(err)
	return err
}

func (c *busInbox) done(envs []aggregate.Envelope) {
	if len(envs) == 0 {
		return
	}
	b := &c.p.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st.Applied += int64(len(envs))
	b.st.LastEventAt = envs[len(envs)-1].OccurredAt
	b.st.LastError, b.st.LastErrorAt = "", time.Time{}
}

func (c *busInbox) failed(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	b := &c.p.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	b.st.LastError, b.st.LastErrorAt = err.Error(), time.Now()
}
