package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
)

// Memory is an outbox kept in memory: for unit tests and for running a
// service with no database (the embedded default of the example). The
// in-memory repository appends to it when its "transaction" commits; a
// [MemoryRelay] publishes what it holds with the same rules as the
// PostgreSQL [Relay]: sequence order, per-aggregate blocking on failures,
// retries, failed after RelayConfig.Retry's MaxAttempts.
//
// Published events are dropped. Memory is safe for concurrent use.
type Memory struct {
	mu        sync.Mutex
	seq       int64
	rows      []*memRow // pending and failed, in sequence order
	ids       map[string]struct{}
	published int64
	wake      chan struct{}
	batchMu   sync.Mutex // one relay batch at a time
}

type memRow struct {
	seq      int64
	env      aggregate.Envelope
	version  int // schema version of the payload
	payload  []byte
	status   Status
	attempts int
	lastErr  string
	nextAt   time.Time
}

// NewMemory returns an empty in-memory outbox.
func NewMemory() *Memory {
	return &Memory{ids: make(map[string]struct{}), wake: make(chan struct{}, 1)}
}

// Append adds committed events to the outbox, like [Store.Write] does in
// a transaction: all or none. Envelopes are validated the same way and the
// payloads encoded to JSON at once, so an event the PostgreSQL store would
// refuse is refused here too (errors wrap [ErrInvalidEvent]); an event ID
// that is still in the outbox is refused as a duplicate.
func (m *Memory) Append(ctx context.Context, events ...aggregate.Envelope) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	enc, err := encodeEvents(events)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[string]struct{}, len(enc))
	for _, e := range enc {
		_, dupOld := m.ids[e.env.ID]
		_, dupNew := seen[e.env.ID]
		if dupOld || dupNew {
			return fmt.Errorf("%w: duplicate event ID %s", ErrInvalidEvent, e.env.ID)
		}
		seen[e.env.ID] = struct{}{}
	}
	for _, e := range enc {
		m.seq++
		env := e.env
		env.Metadata = env.Metadata.Clone()
		m.rows = append(m.rows, &memRow{seq: m.seq, env: env, version: int(e.eventVersion), payload: e.payload, status: StatusPending})
		m.ids[env.ID] = struct{}{}
	}
	select {
	case m.wake <- struct{}{}:
	default:
	}
	return nil
}

// Pending returns the events waiting to be published (retrying ones
// included), oldest first, with their payloads.
func (m *Memory) Pending() []aggregate.Envelope { return m.byStatus(StatusPending) }

// Failed returns the events that ran out of attempts, oldest first.
func (m *Memory) Failed() []aggregate.Envelope { return m.byStatus(StatusFailed) }

func (m *Memory) byStatus(s Status) []aggregate.Envelope {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []aggregate.Envelope
	for _, r := range m.rows {
		if r.status == s {
			env := r.env
			env.Metadata = env.Metadata.Clone()
			out = append(out, env)
		}
	}
	return out
}

// Published returns how many events were published so far.
func (m *Memory) Published() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.published
}

// Stats returns a snapshot like [Admin.Stats].
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	var s Stats
	now := time.Now()
	for _, r := range m.rows {
		switch r.status {
		case StatusPending:
			s.Pending++
			if r.attempts > 0 {
				s.Retrying++
			}
			if s.Pending == 1 {
				s.OldestPending = max(now.Sub(r.env.OccurredAt), 0)
			}
		case StatusFailed:
			s.Failed++
		}
	}
	return s
}

// RetryFailed puts every failed event back to pending with its attempts
// reset and returns how many.
func (m *Memory) RetryFailed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.rows {
		if r.status == StatusFailed {
			r.status, r.attempts, r.nextAt = StatusPending, 0, time.Time{}
			n++
		}
	}
	if n > 0 {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
	return n
}

// memBackend adapts Memory to the relay's processor.
type memBackend struct{ m *Memory }

func (b memBackend) fetch(_ context.Context, limit int) ([]item, error) {
	m := b.m
	m.mu.Lock()
	defer m.mu.Unlock()
	var blocked map[aggKey]bool
	now := time.Now()
	var out []item
	for _, r := range m.rows {
		if len(out) >= limit {
			break
		}
		k := aggKey{r.env.AggregateType, r.env.AggregateID}
		if blocked[k] {
			continue
		}
		if r.status == StatusFailed || r.nextAt.After(now) {
			if blocked == nil {
				blocked = make(map[aggKey]bool)
			}
			blocked[k] = true
			continue
		}
		env := r.env
		env.Payload = nil
		env.Metadata = env.Metadata.Clone()
		out = append(out, item{seq: r.seq, env: env, eventVersion: r.version, payload: r.payload, attempts: r.attempts})
	}
	return out, nil
}

func (b memBackend) markPublished(_ context.Context, seqs []int64) error {
	m := b.m
	done := make(map[int64]struct{}, len(seqs))
	for _, s := range seqs {
		done[s] = struct{}{}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	kept := m.rows[:0]
	for _, r := range m.rows {
		if _, ok := done[r.seq]; ok {
			delete(m.ids, r.env.ID)
			m.published++
			continue
		}
		kept = append(kept, r)
	}
	clear(m.rows[len(kept):])
	m.rows = kept
	return nil
}

func (b memBackend) markAttempts(_ context.Context, as []attempt) error {
	m := b.m
	by := make(map[int64]attempt, len(as))
	for _, a := range as {
		by[a.seq] = a
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.rows {
		if a, ok := by[r.seq]; ok {
			r.attempts, r.lastErr = a.attempts, a.err
			if a.final {
				r.status, r.nextAt = StatusFailed, time.Time{}
			} else {
				r.nextAt = now.Add(a.delay)
			}
		}
	}
	return nil
}

// MemoryRelay publishes the events of a [Memory] outbox through a watermill
// publisher, with the rules of the PostgreSQL [Relay]. Several relays on
// one Memory take turns batch by batch, so order is kept.
type MemoryRelay struct {
	m      *Memory
	cfg    RelayConfig
	proc   *processor
	active atomic.Bool
}

// NewMemoryRelay returns a relay for m publishing through pub. A nil cfg
// means the defaults; the fields about PostgreSQL (Outbox,
// LeaderPollInterval, Retention, CleanupInterval) are ignored.
func NewMemoryRelay(m *Memory, pub message.Publisher, cfg *RelayConfig) (*MemoryRelay, error) {
	var errs []error
	if m == nil {
		errs = append(errs, errors.New("outbox: NewMemoryRelay: nil Memory"))
	}
	if pub == nil {
		errs = append(errs, errors.New("outbox: NewMemoryRelay: nil publisher"))
	}
	c, _, err := cfg.withDefaults()
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	r := &MemoryRelay{m: m, cfg: c}
	r.proc = &processor{be: memBackend{m}, pub: pub, cfg: &r.cfg}
	return r, nil
}

// Flush publishes everything that is eligible now, batch by batch, and
// returns how many events were published. Events whose publish fails get
// an attempt recorded (and wait for their retry); the error reports
// publisher outages. Flush is what tests call for a deterministic hand-off.
func (r *MemoryRelay) Flush(ctx context.Context) (int, error) {
	total := 0
	for {
		res, err := r.batch(ctx)
		total += res.published
		if err != nil {
			return total, err
		}
		if res.fetched < r.cfg.BatchSize || res.published+res.failed == 0 {
			return total, nil
		}
	}
}

func (r *MemoryRelay) batch(ctx context.Context) (batchResult, error) {
	r.m.batchMu.Lock()
	defer r.m.batchMu.Unlock()
	return r.proc.batch(ctx)
}

// Run publishes events as they are appended until ctx is done, then
// returns nil after finishing the batch in flight (within
// RelayConfig.ShutdownTimeout). Failed publishes are retried after their
// delay; publisher outages are reported through the hooks and retried with
// backoff.
func (r *MemoryRelay) Run(ctx context.Context) error {
	if !r.active.CompareAndSwap(false, true) {
		return ErrRelayRunning
	}
	defer r.active.Store(false)
	failures := 0 // batches failed in a row, for the backoff
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var retryAt time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		bctx, cancel := graceful(ctx, r.cfg.ShutdownTimeout)
		res, err := r.batch(bctx)
		cancel()
		wait := r.cfg.PollInterval
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.cfg.Logger.Warn("outbox: memory relay error (retrying)", "error", err)
			if h := r.cfg.Hooks.OnError; h != nil {
				h(err)
			}
			failures++
			wait = reconnect.Delay(failures)
		} else {
			failures = 0
			if res.fetched >= r.cfg.BatchSize {
				continue
			}
		}
		now := time.Now()
		if res.retryIn > 0 {
			if at := now.Add(res.retryIn + time.Millisecond); retryAt.Before(now) || at.Before(retryAt) {
				retryAt = at
			}
		}
		if !retryAt.IsZero() {
			if d := time.Until(retryAt); d <= 0 {
				retryAt = time.Time{}
				wait = 0
			} else if d < wait && err == nil {
				wait = d
			}
		}
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-r.m.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}
