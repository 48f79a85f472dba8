package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/retry"
)

// ErrRelayRunning is returned by Run when the same relay is already
// running.
var ErrRelayRunning = errors.New("outbox: relay is already running")

// Relay publishes the events of a PostgreSQL outbox through a watermill
// [message.Publisher]. Any number of relays may run against one outbox
// table; one of them, the leader, publishes while the others stand by (see
// the package documentation). Create it with [NewRelay] and start it with
// [Relay.Run].
type Relay struct {
	db     *pgxpool.Pool
	pub    message.Publisher
	cfg    RelayConfig
	oc     Config
	admin  *Admin
	leader atomic.Bool
	active atomic.Bool
}

// NewRelay returns a relay that reads the outbox of cfg.Outbox from db and
// publishes through pub. A nil cfg means the defaults. It does not touch
// the database until Run.
func NewRelay(db *pgxpool.Pool, pub message.Publisher, cfg *RelayConfig) (*Relay, error) {
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("outbox: NewRelay: nil pool"))
	}
	if pub == nil {
		errs = append(errs, errors.New("outbox: NewRelay: nil publisher"))
	}
	c, oc, err := cfg.withDefaults()
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	admin, err := NewAdmin(db, &oc)
	if err != nil {
		return nil, err
	}
	return &Relay{db: db, pub: pub, cfg: c, oc: oc, admin: admin}, nil
}

// IsLeader reports whether this relay is currently the one publishing.
func (r *Relay) IsLeader() bool { return r.leader.Load() }

// Stats returns a snapshot of the outbox; see [Admin.Stats].
func (r *Relay) Stats(ctx context.Context) (Stats, error) { return r.admin.Stats(ctx) }

// Run relays events until ctx is done, then returns nil after finishing
// (or, past RelayConfig.ShutdownTimeout, abandoning) the batch in flight.
// It returns an error only when it cannot work at all: the outbox table is
// missing or not migrated ([ErrNotMigrated]), or the relay is already
// running ([ErrRelayRunning]). Database and publisher errors are reported
// through the hooks and the logger and retried with backoff.
//
// Run first competes for leadership on a dedicated connection (taken from
// db's pool and kept outside it). The leader LISTENs on the outbox's
// channel, publishes whatever is pending, then waits for a notification,
// the poll interval or a due retry, and repeats.
func (r *Relay) Run(ctx context.Context) error {
	if !r.active.CompareAndSwap(false, true) {
		return ErrRelayRunning
	}
	defer r.active.Store(false)

	failures := 0 // in a row, for the reconnect backoff
	var n names
	for {
		var err error
		if n, err = r.admin.names(ctx); err == nil {
			break
		}
		if errors.Is(err, ErrNotMigrated) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		r.reportError(err)
		failures++
		if retry.Sleep(ctx, reconnect.Delay(failures)) != nil {
			return nil
		}
	}
	proc := &processor{be: newPGBackend(r.db, n, r.cfg.Retention), pub: r.pub, cfg: &r.cfg}
	failures = 0
	for {
		led, err := r.session(ctx, n, proc)
		if ctx.Err() != nil {
			return nil
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

// session takes a dedicated connection, waits on it for leadership and
// leads until the connection or ctx ends.
func (r *Relay) session(ctx context.Context, n names, proc *processor) (led bool, _ error) {
	pc, err := r.db.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("outbox: relay connection: %w", err)
	}
	conn := pc.Hijack()
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = conn.Close(cctx) // ends the session: releases the lock, stops LISTEN
	}()

	key := lockKey("relay", n)
	for {
		var got bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
			if ctx.Err() != nil {
				return false, nil
			}
			return false, fmt.Errorf("outbox: leader lock: %w", err)
		}
		if got {
			break
		}
		if retry.Sleep(ctx, r.cfg.LeaderPollInterval) != nil {
			return false, nil
		}
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{n.channel}.Sanitize()); err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, fmt.Errorf("outbox: listen: %w", err)
	}
	return true, r.lead(ctx, conn, n, proc)
}

// lead runs the leader's loop while conn (which holds the lock and
// listens) stays healthy.
func (r *Relay) lead(ctx context.Context, conn *pgx.Conn, n names, proc *processor) error {
	r.setLeader(true)
	defer r.setLeader(false)
	r.cfg.Logger.Info("outbox: relay is the leader", "table", n.qtable)

	lctx, cancel := context.WithCancelCause(ctx)
	wake := make(chan struct{}, 1)
	listening := make(chan struct{})
	go func() {
		defer close(listening)
		for {
			if _, err := conn.WaitForNotification(lctx); err != nil {
				if lctx.Err() == nil {
					cancel(fmt.Errorf("outbox: leader connection lost: %w", err))
				}
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	defer func() {
		cancel(nil)
		<-listening
	}()

	var (
		failures    int // batches failed in a row, for the backoff
		timer       = time.NewTimer(time.Hour)
		retryAt     time.Time
		nextCleanup time.Time
	)
	defer timer.Stop()
	for {
		if lctx.Err() != nil {
			return leaderCause(ctx, lctx)
		}
		// On shutdown the batch in flight may finish (within
		// ShutdownTimeout); on lost leadership it is abandoned at once,
		// since another relay may already publish the same rows.
		bctx, bcancel := graceful(ctx, r.cfg.ShutdownTimeout)
		stopOnLoss := context.AfterFunc(lctx, func() {
			if ctx.Err() == nil {
				bcancel()
			}
		})
		res, err := proc.batch(bctx)
		stopOnLoss()
		bcancel()
		wait := r.cfg.PollInterval
		if err != nil {
			if lctx.Err() != nil {
				return leaderCause(ctx, lctx)
			}
			r.reportError(err)
			failures++
			wait = reconnect.Delay(failures)
		} else {
			failures = 0
		}
		now := time.Now()
		if res.retryIn > 0 {
			if at := now.Add(res.retryIn + 5*time.Millisecond); retryAt.Before(now) || at.Before(retryAt) {
				retryAt = at
			}
		}
		if r.cfg.Retention > 0 && !now.Before(nextCleanup) {
			nextCleanup = now.Add(r.cfg.CleanupInterval)
			if _, err := deletePublished(lctx, r.db, n, r.cfg.Retention); err != nil && lctx.Err() == nil {
				r.reportError(err)
			}
		}
		if err == nil && res.fetched >= r.cfg.BatchSize {
			continue // more is waiting
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
		case <-lctx.Done():
			return leaderCause(ctx, lctx)
		case <-wake:
			timer.Stop() // Go 1.23+ timers: no stale tick after Stop/Reset
		case <-timer.C:
		}
	}
}

// leaderCause is why leading stopped: nil when Run's context ended,
// the lost connection otherwise.
func leaderCause(parent, lctx context.Context) error {
	if parent.Err() == nil {
		return context.Cause(lctx)
	}
	return nil
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
// cancelled): in-flight work may finish, but not forever.
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

// reconnect is the backoff after a failure of the database or the
// publisher that is not an event's fault: waits of up to 50ms, doubling up
// to 5s, jittered. Only its delays are used; the relay retries for as long
// as it runs.
var reconnect = retry.Policy{BaseDelay: 50 * time.Millisecond, MaxDelay: 5 * time.Second}
