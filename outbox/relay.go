package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/metric"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/telemetry"
	"github.com/dddkit/dddkit/retry"
)

// ErrRelayRunning is returned by [Relay.Run] when the relay already runs.
var ErrRelayRunning = errors.New("outbox: relay is already running")

// ErrUnusable is wrapped by the errors of a [Source] that retrying cannot
// fix (its tables are missing or too old, its database handle cannot hold
// a leader connection). [Relay.Run] returns such an error at once instead
// of retrying it.
var ErrUnusable = errors.New("outbox: source unusable")

// Relay publishes the events of a [Source] through a watermill
// publisher (in production the kafka package's), in the order they were
// written, each aggregate's events in version order. Several relays may
// run on one Source (one per replica): one leads at a time, the others
// wait to take over.
//
// An event whose publish fails is retried per [RelayConfig].Retry; while
// it waits, and after it has failed for good, the later events of the same
// aggregate wait behind it, and the other aggregates flow.
type Relay struct {
	src     Source
	pub     message.Publisher
	reg     *eventbus.Registry
	cfg     RelayConfig
	proc    *processor
	metrics *relayMetrics // nil: not instrumented
	leader  atomic.Bool
	active  atomic.Bool
	mu      sync.Mutex // one Flush at a time in this process
}

// NewRelay returns a relay from src to pub. reg is the service's one
// event registry: its topic rule ([eventbus.RegistryConfig].Topic) names
// the topic of every event, the same rule the consumers subscribe by, and
// its source ([eventbus.RegistryConfig].Source, required) is the
// CloudEvents source of every message. cfg nil means defaults.
func NewRelay(src Source, pub message.Publisher, reg *eventbus.Registry, cfg *RelayConfig) (*Relay, error) {
	return newRelay(src, pub, reg, cfg, telemetry.Meter())
}

// newRelay is [NewRelay] with its instruments on meter (nil: none).
func newRelay(src Source, pub message.Publisher, reg *eventbus.Registry, cfg *RelayConfig, meter metric.Meter) (*Relay, error) {
	var errs []error
	if src == nil {
		errs = append(errs, errors.New("outbox: NewRelay: nil Source"))
	}
	if pub == nil {
		errs = append(errs, errors.New("outbox: NewRelay: nil publisher"))
	}
	if reg == nil {
		errs = append(errs, errors.New("outbox: NewRelay: nil Registry"))
	} else if err := reg.CheckSource(); err != nil {
		errs = append(errs, fmt.Errorf("outbox: NewRelay: %w", err))
	}
	c, err := cfg.withDefaults()
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r := &Relay{src: src, pub: pub, reg: reg, cfg: c}
	if meter != nil {
		r.metrics = newRelayMetrics(meter, reg)
	}
	r.proc = &processor{src: src, pub: pub, reg: reg, cfg: &r.cfg, metrics: r.metrics}
	return r, nil
}

// IsLeader reports whether this relay currently leads its Source.
func (r *Relay) IsLeader() bool { return r.leader.Load() }

// Stats returns the Source's counts of pending, retrying and failed events.
func (r *Relay) Stats(ctx context.Context) (Stats, error) { return r.src.Stats(ctx) }

// reconnect paces Run's attempts to lead again after an error.
var reconnect = retry.Policy{BaseDelay: 50 * time.Millisecond, MaxDelay: 5 * time.Second}

// Run relays until ctx ends, then returns nil after the batch in flight
// finished or ShutdownTimeout passed. It leads the Source when it can and
// waits to take over otherwise; errors (a lost connection, a broker
// outage) are reported through Hooks.OnError and the Logger and retried
// with backoff. It returns an error only for a Source that cannot work
// ([ErrUnusable]) and [ErrRelayRunning].
func (r *Relay) Run(ctx context.Context) error {
	if !r.active.CompareAndSwap(false, true) {
		return ErrRelayRunning
	}
	defer r.active.Store(false)
	defer r.metrics.observe(ctx, r)()
	failures := 0
	for {
		led := false
		err := r.src.Lead(ctx, func(lctx context.Context, wake <-chan struct{}) error {
			led = true
			r.setLeader(true)
			defer r.setLeader(false)
			return r.lead(ctx, lctx, wake)
		})
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrUnusable) {
			return err
		}
		if led {
			failures = 0
		}
		if err != nil {
			r.reportError(err)
		}
		failures++
		if retry.Sleep(ctx, reconnect.Delay(failures)) != nil {
			return nil
		}
	}
}

// Flush leads the Source (waiting for the leader, if another relay is
// it) and publishes until nothing is due, then returns how many events it
// published. Tests and the embedded mode use it instead of Run.
func (r *Relay) Flush(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	total := 0
	err := r.src.Lead(ctx, func(lctx context.Context, _ <-chan struct{}) error {
		pl := newPipeline(lctx, r.proc, r.cfg.MaxInFlight)
		defer pl.abandon()
		// more: events may be due; ahead: fetch while batches are in
		// flight (as Run does, see lead).
		more, ahead := true, false
		for {
			if more && (pl.len() == 0 || ahead && !pl.full()) {
				alone := pl.len() == 0
				b, full, err := r.proc.fetch(lctx, pl.inFlight())
				if err != nil {
					res, _ := pl.settleAll(lctx)
					total += res.published
					return err
				}
				ahead, more = full, full || !alone
				if len(b.items) > 0 {
					pl.start(b)
				}
				if full && !pl.full() {
					continue
				}
			}
			if pl.len() == 0 {
				if !more {
					return nil
				}
				continue
			}
			res, err := pl.settle(lctx, <-pl.completed())
			total += res.published
			if err != nil {
				rest, _ := pl.settleAll(lctx)
				total += rest.published
				return err
			}
			if res.published+res.failed == 0 {
				more = false // no progress (abandoned): stop fetching
			}
			ahead = ahead || more
		}
	})
	if err == nil {
		err = ctx.Err()
	}
	return total, err
}

// lead relays while this relay leads (lctx alive). It fetches a batch
// at once when the last one was full, when woken, when a retry or a
// deadline is due, and every PollInterval; while the last fetched batch
// was full, and when woken by new events, it fetches the next one as
// soon as fewer than MaxInFlight are in flight, and records each batch
// when its publishing finished.
func (r *Relay) lead(ctx, lctx context.Context, wake <-chan struct{}) error {
	// The batches in flight are not cut short by the shutdown of ctx (for
	// ShutdownTimeout), but they are by the loss of leadership.
	bctx, bcancel := graceful(ctx, r.cfg.ShutdownTimeout)
	stopOnLoss := context.AfterFunc(lctx, func() {
		if ctx.Err() == nil {
			bcancel()
		}
	})
	pl := newPipeline(bctx, r.proc, r.cfg.MaxInFlight)
	defer func() {
		stopOnLoss()
		bcancel()
		pl.abandon()
	}()

	var (
		failures  int
		timer     = time.NewTimer(time.Hour)
		retryAt   time.Time
		backoff   time.Time // no fetch before (after an error)
		wantFetch = true    // events may be due
		ahead     bool      // the last batch was full: fetch while others are in flight
	)
	defer timer.Stop()
	fail := func(err error) {
		r.reportError(err)
		failures++
		backoff = time.Now().Add(reconnect.Delay(failures))
		wantFetch = true
	}
	for {
		if lctx.Err() != nil {
			if ctx.Err() != nil {
				// Shutting down: finish and record the batches in flight.
				if _, err := pl.settleAll(bctx); err != nil && bctx.Err() == nil {
					r.reportError(err)
				}
			}
			return nil
		}
		now := time.Now()
		if wantFetch && !now.Before(backoff) && (pl.len() == 0 || ahead && !pl.full()) {
			alone := pl.len() == 0
			b, full, err := r.proc.fetch(bctx, pl.inFlight())
			if err != nil {
				if lctx.Err() != nil {
					continue
				}
				fail(err)
			} else {
				if len(b.items) == 0 && alone {
					failures = 0
				}
				// A short batch read beside batches in flight may have
				// left out events they hold back: read again after the
				// next of them is recorded.
				ahead, wantFetch = full, full || !alone
				if len(b.items) > 0 {
					pl.start(b)
				}
				if full && !pl.full() {
					continue // more is waiting
				}
			}
		}

		wait := r.cfg.PollInterval
		if d := time.Until(backoff); d > 0 {
			wait = d
		} else if !wantFetch {
			now := time.Now()
			if !retryAt.IsZero() {
				if d := retryAt.Sub(now); d <= 0 {
					retryAt = time.Time{}
					wait = 0
				} else if d < wait {
					wait = d
				}
			}
			if due := r.src.NextDue(); !due.IsZero() {
				// A deadline becomes due: fetch then (a little after, so
				// that the database's clock has passed it too).
				wait = min(wait, max(time.Until(due)+5*time.Millisecond, time.Millisecond))
			}
		}
		if wait <= 0 {
			wantFetch = true
			continue
		}
		timer.Reset(wait)
		select {
		case <-lctx.Done():
			timer.Stop()
		case f := <-pl.completed():
			timer.Stop()
			res, err := pl.settle(bctx, f)
			if err != nil {
				if lctx.Err() != nil {
					continue
				}
				fail(err)
			} else {
				failures = 0
			}
			ahead = ahead || wantFetch
			if res.retryIn > 0 {
				if at := time.Now().Add(res.retryIn + 5*time.Millisecond); retryAt.IsZero() || at.Before(retryAt) {
					retryAt = at
				}
			}
		case <-wake:
			timer.Stop() // Go 1.23+ timers: no stale tick after Stop/Reset
			// New events: read them beside the batches in flight, so that
			// they do not wait for those to be acknowledged first.
			wantFetch, ahead = true, true
		case <-timer.C:
			wantFetch = true
		}
	}
}

func (r *Relay) setLeader(v bool) {
	r.leader.Store(v)
	if h := r.cfg.Hooks.OnLeader; h != nil {
		h(v)
	}
}

func (r *Relay) reportError(err error) {
	r.cfg.Logger.Warn("outbox: relay error (retrying)", "error", err)
	if h := r.cfg.Hooks.OnError; h != nil {
		h(err)
	}
}

// graceful returns a context that ends grace after parent ends (or when
// its cancel is called).
func graceful(parent context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-ctx.Done():
		}
	})
	return ctx, func() {
		stop()
		cancel()
	}
}
