package projection

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dddkit/dddkit/internal/check"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/retry"
)

// DefaultBatchSize is how many events a [Runner] applies per transaction
// unless [RunnerConfig.BatchSize] says otherwise.
const DefaultBatchSize = 1000

// defaultRetry is the retry policy of a Runner: a failing batch is
// retried with backoff for about ten minutes before Run gives up.
var defaultRetry = retry.Policy{MaxAttempts: 30, BaseDelay: 100 * time.Millisecond, MaxDelay: 30 * time.Second}

// RunnerConfig configures a [Runner]. The zero value and nil are the
// defaults.
type RunnerConfig struct {
	// BatchSize is how many events are applied in one transaction at
	// most. 0 means [DefaultBatchSize].
	BatchSize int

	// Retry bounds the retries of a failing event: after MaxAttempts
	// failures in a row [Runner.Run] returns an [*Error] and the
	// projection stops at that event (it is never skipped). Zero fields
	// mean 30 attempts, 100ms doubling up to 30s.
	Retry retry.Policy

	// Logger receives the runner's log lines; nil means slog.Default().
	Logger *slog.Logger

	// Now is the clock of the status times; nil means time.Now.
	Now func() time.Time
}

// Validate reports every problem of c at once.
func (c *RunnerConfig) Validate() error {
	if c == nil {
		return nil
	}
	e := check.New("projection: RunnerConfig")
	check.NotNegative(e, "BatchSize", c.BatchSize)
	var errs []error
	errs = append(errs, e.Err())
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("projection: RunnerConfig.Retry: %w", err))
	}
	return errors.Join(errs...)
}

// Runner runs a [Projection] on an event store's stream
// ([repository.Stream]): it reads the events the projection declared
// after its checkpoint, applies them in batches, each batch in one
// [Store] transaction with the new checkpoint, and waits for new events
// when it has caught up. Any number of runners of one projection may
// run (in one process or several): the checkpoint is locked and checked
// in each batch's transaction, so every event is applied once, in stream
// order.
type Runner struct {
	p      *Projection
	stream repository.Stream
	store  Store
	cfg    RunnerConfig
	filter repository.StreamFilter
	logger *slog.Logger
}

// NewRunner returns a runner of p that reads stream and keeps p's
// checkpoint in store. A nil cfg means the defaults.
func NewRunner(p *Projection, stream repository.Stream, store Store, cfg *RunnerConfig) (*Runner, error) {
	var errs []error
	if err := p.checkDeclared(); err != nil {
		errs = append(errs, err)
	}
	if stream == nil {
		errs = append(errs, errors.New("projection: NewRunner: nil Stream"))
	}
	if store == nil {
		errs = append(errs, errors.New("projection: NewRunner: nil Store"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := RunnerConfig{}
	if cfg != nil {
		c = *cfg
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	c.Retry = c.Retry.WithDefaults(defaultRetry)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Runner{
		p: p, stream: stream, store: store, cfg: c, logger: c.Logger,
		filter: repository.StreamFilter{EventNames: p.EventNames()},
	}, nil
}

// Filter returns the filter the runner reads the stream with: the
// event names its projection declared.
func (r *Runner) Filter() repository.StreamFilter {
	return repository.StreamFilter{EventNames: r.p.EventNames()}
}

// Error is returned by [Runner.Run] and [Runner.Rebuild] when an event
// kept failing: the projection stopped at it. The checkpoint stays
// before the event; running the projection again starts with it.
type Error struct {
	Projection string
	// Position, EventID and EventName name the failing event; they are
	// zero when the failure was not an event's (the store or stream
	// could not be reached).
	Position  int64
	EventID   string
	EventName string
	Attempts  int
	Err       error
}

// Error implements error.
func (e *Error) Error() string {
	if e.EventID == "" {
		return fmt.Sprintf("projection %q stopped after %d attempts: %v", e.Projection, e.Attempts, e.Err)
	}
	return fmt.Sprintf("projection %q stopped at event %s %q (position %d) after %d attempts: %v",
		e.Projection, e.EventName, e.EventID, e.Position, e.Attempts, e.Err)
}

// Unwrap returns the error of the last attempt.
func (e *Error) Unwrap() error { return e.Err }

// eventError is the failure of one event's handler.
type eventError struct {
	ev  repository.StoredEvent
	err error
}

func (e *eventError) Error() string {
	return fmt.Sprintf("event %s %q (position %d): %v", e.ev.Event.Name, e.ev.Event.ID, e.ev.Position, e.err)
}
func (e *eventError) Unwrap() error { return e.err }

// errMoved says the checkpoint moved under a batch: another runner
// applied it, or a reset started over.
var errMoved = errors.New("projection: checkpoint moved")

// Run applies the stream to the projection until ctx ends (then it
// returns nil) or an event keeps failing (then an [*Error]). It catches
// up in batches and then follows new events, woken by [repository.Stream]
// Wait. A failing batch is applied again one event at a time, so that
// the events before the failing one commit; the failing event is retried
// with backoff ([RunnerConfig.Retry]) and its error is in the status.
func (r *Runner) Run(ctx context.Context) error {
	return r.loop(ctx, false, nil)
}

// CatchUp applies the stream to the projection as [Runner.Run] does
// and returns once it has applied every event the stream had for it
// (nil), when ctx ends (ctx's error) or when an event kept failing (an
// [*Error]). It is Run for a command-line tool or a test.
func (r *Runner) CatchUp(ctx context.Context) error {
	return r.loop(ctx, true, nil)
}

// Progress reports how far a rebuild has come.
type Progress struct {
	// Position is the position of the last event applied; Target is the
	// stream's head when the rebuild began.
	Position, Target int64
	// Applied counts the events applied since the reset.
	Applied int64
}

// Rebuild resets the projection and replays the stream into it from the
// start: in one transaction it runs the projection's OnReset handler and
// sets the checkpoint back to the start (marked rebuilding, with the
// stream's head as target), then applies the stream as [Runner.Run]
// does, calling progress (when not nil) after each batch, and returns
// when it has caught up with the stream. Runners of the projection that
// are running meanwhile (here or in other processes) notice the reset
// and help: each event is still applied once.
//
// Between the reset and the end of the replay, readers of the read model
// see it emptied and filling up again in stream order. To keep an old
// read model answering, build a new one beside it instead (a projection
// with another name writing other tables) and switch readers over when
// its status says it has caught up.
func (r *Runner) Rebuild(ctx context.Context, progress func(Progress)) error {
	if r.p.reset == nil {
		return fmt.Errorf("projection %q: rebuild: %w", r.p.name, ErrNoResetHandler)
	}
	head, err := r.stream.Head(ctx)
	if err != nil {
		return fmt.Errorf("projection %q: rebuild: read head: %w", r.p.name, err)
	}
	err = r.store.Do(ctx, func(ctx context.Context) error {
		if _, err := r.store.Load(ctx, r.p.name); err != nil { // lock it
			return err
		}
		if err := r.p.reset(ctx); err != nil {
			return fmt.Errorf("OnReset: %w", err)
		}
		return r.store.Save(ctx, r.p.name, Checkpoint{Rebuilding: true, RebuildTarget: head})
	})
	if err != nil {
		return fmt.Errorf("projection %q: reset: %w", r.p.name, err)
	}
	r.logger.LogAttrs(ctx, slog.LevelInfo, "projection: rebuilding",
		slog.String("projection", r.p.name), slog.Int64("target", head))
	return r.loop(ctx, true, progress)
}

// loop applies batches until ctx ends or, with untilCaughtUp, until the
// stream has no more events for the projection.
func (r *Runner) loop(ctx context.Context, untilCaughtUp bool, progress func(Progress)) error {
	failures := 0
	reported := int64(-1)
	report := func(cp Checkpoint) {
		if progress != nil && cp.Position != reported {
			reported = cp.Position
			progress(Progress{Position: cp.Position, Target: cp.RebuildTarget, Applied: cp.Applied})
		}
	}
	for {
		n, cp, head, err := r.step(ctx)
		if ctx.Err() != nil {
			if untilCaughtUp {
				return fmt.Errorf("projection %q: %w", r.p.name, ctx.Err())
			}
			return nil
		}
		if err != nil {
			failures++
			r.recordError(ctx, err)
			if failures >= r.cfg.Retry.MaxAttempts {
				return r.stopped(err, failures)
			}
			delay := r.cfg.Retry.Delay(failures)
			r.logger.LogAttrs(ctx, slog.LevelError, "projection: batch failed, retrying",
				slog.String("projection", r.p.name), slog.Int("attempt", failures),
				slog.Duration("delay", delay), slog.Any("error", err))
			if retry.Sleep(ctx, delay) != nil {
				continue // ctx ended: handled above
			}
			continue
		}
		failures = 0
		r.recordProgress(ctx, cp, head, n)
		if n > 0 {
			if cp.Rebuilding {
				report(cp)
			}
			continue
		}
		if untilCaughtUp {
			report(cp)
			return nil
		}
		// Wait from the head seen before the empty read: events up to it
		// that the filter does not select must not wake the runner.
		if err := r.stream.Wait(ctx, max(cp.Position, head)); err != nil && ctx.Err() == nil {
			r.logger.LogAttrs(ctx, slog.LevelError, "projection: wait for events",
				slog.String("projection", r.p.name), slog.Any("error", err))
			_ = retry.Sleep(ctx, r.cfg.Retry.BaseDelay)
		}
	}
}

// stopped turns the error of the last attempt into an [*Error].
func (r *Runner) stopped(err error, attempts int) error {
	e := &Error{Projection: r.p.name, Attempts: attempts, Err: err}
	var ee *eventError
	if errors.As(err, &ee) {
		e.Position, e.EventID, e.EventName, e.Err = ee.ev.Position, ee.ev.Event.ID, ee.ev.Event.Name, ee.err
	}
	return e
}

// step applies the next batch. It returns how many events it handled (0
// when the projection has caught up; a batch that another runner applied
// first counts as handled), the checkpoint after it and the stream's
// head as it was before the read.
func (r *Runner) step(ctx context.Context) (int, Checkpoint, int64, error) {
	cp, err := r.store.Load(ctx, r.p.name)
	if err != nil {
		return 0, cp, 0, fmt.Errorf("load checkpoint: %w", err)
	}
	head, err := r.stream.Head(ctx)
	if err != nil {
		return 0, cp, 0, fmt.Errorf("read stream head: %w", err)
	}
	events, err := r.stream.Read(ctx, cp.Position, r.filter, r.cfg.BatchSize)
	if err != nil {
		return 0, cp, head, fmt.Errorf("read stream after %d: %w", cp.Position, err)
	}
	if len(events) == 0 {
		if cp.Rebuilding || cp.LastError != "" {
			cp, err = r.settle(ctx, cp.Position)
		}
		return 0, cp, head, err
	}
	next, err := r.apply(ctx, cp.Position, events)
	switch {
	case err == nil:
		return len(events), next, head, nil
	case errors.Is(err, errMoved):
		return len(events), cp, head, nil
	case ctx.Err() != nil:
		return 0, cp, head, err
	}
	if len(events) == 1 {
		return 0, cp, head, blame(events[0], err)
	}
	// Find the failing event: apply the batch one event at a time; the
	// events before it commit.
	r.logger.LogAttrs(ctx, slog.LevelDebug, "projection: batch failed, applying its events one by one",
		slog.String("projection", r.p.name), slog.Int("events", len(events)), slog.Any("error", err))
	after := cp.Position
	for k := range events {
		next, err := r.apply(ctx, after, events[k:k+1])
		switch {
		case errors.Is(err, errMoved):
			return k + 1, cp, head, nil
		case err != nil:
			return k, cp, head, blame(events[k], err)
		}
		after, cp = next.Position, next
	}
	return len(events), cp, head, nil
}

// blame attributes the failure of a batch of ev alone to ev: its
// handler failed, or the statements it queued, or the commit.
func blame(ev repository.StoredEvent, err error) error {
	var ee *eventError
	if errors.As(err, &ee) {
		return err
	}
	return &eventError{ev: ev, err: err}
}

// apply applies events, which follow position after, and the new
// checkpoint in one transaction. It returns errMoved when the
// checkpoint is no longer at after.
func (r *Runner) apply(ctx context.Context, after int64, events []repository.StoredEvent) (Checkpoint, error) {
	var next Checkpoint
	err := r.store.Do(ctx, func(ctx context.Context) error {
		cp, err := r.store.Load(ctx, r.p.name)
		if err != nil {
			return fmt.Errorf("load checkpoint: %w", err)
		}
		if cp.Position != after {
			return errMoved
		}
		for _, ev := range events {
			if err := r.p.apply(ctx, ev.Event); err != nil {
				return &eventError{ev: ev, err: err}
			}
		}
		last := events[len(events)-1]
		cp.Position = last.Position
		cp.Applied += int64(len(events))
		cp.LastEventAt = last.RecordedAt
		cp.LastError, cp.LastErrorAt = "", time.Time{}
		next = cp
		return r.store.Save(ctx, r.p.name, cp)
	})
	return next, err
}

// settle clears what a caught-up projection no longer needs: the
// rebuilding mark and the last error.
func (r *Runner) settle(ctx context.Context, position int64) (Checkpoint, error) {
	var out Checkpoint
	err := r.store.Do(ctx, func(ctx context.Context) error {
		cp, err := r.store.Load(ctx, r.p.name)
		if err != nil {
			return err
		}
		out = cp
		if cp.Position != position {
			return nil // moved meanwhile: the next step sees it
		}
		if cp.Rebuilding {
			r.logger.LogAttrs(ctx, slog.LevelInfo, "projection: rebuilt",
				slog.String("projection", r.p.name), slog.Int64("position", cp.Position), slog.Int64("applied", cp.Applied))
		}
		cp.Rebuilding, cp.LastError, cp.LastErrorAt = false, "", time.Time{}
		out = cp
		return r.store.Save(ctx, r.p.name, cp)
	})
	if err != nil {
		return out, fmt.Errorf("save checkpoint: %w", err)
	}
	return out, nil
}

// recordError saves err as the projection's last error, in a
// transaction of its own (the batch's rolled back).
func (r *Runner) recordError(ctx context.Context, cause error) {
	if ctx.Err() != nil {
		return
	}
	err := r.store.Do(ctx, func(ctx context.Context) error {
		cp, err := r.store.Load(ctx, r.p.name)
		if err != nil {
			return err
		}
		cp.LastError, cp.LastErrorAt = cause.Error(), r.cfg.Now()
		return r.store.Save(ctx, r.p.name, cp)
	})
	if err != nil {
		r.logger.LogAttrs(ctx, slog.LevelError, "projection: cannot record error",
			slog.String("projection", r.p.name), slog.Any("error", err), slog.Any("cause", cause))
	}
}

// Status is how a projection is doing.
type Status struct {
	// Name is the projection's name.
	Name string
	// Checkpoint is the stored checkpoint: position, events applied,
	// last error, rebuilding.
	Checkpoint
	// Head is the stream's head position.
	Head int64
	// LagEvents is how far behind the head the projection is, in stream
	// positions: an upper bound of the events it has still to apply (0
	// when it has none to apply). Positions may have gaps and include
	// events the projection does not handle.
	LagEvents int64
	// Lag is how long the oldest event the projection has still to apply
	// has been in the store (0 when it has none).
	Lag time.Duration
}

// Status returns the projection's status: its checkpoint and how far
// behind the stream it is.
func (r *Runner) Status(ctx context.Context) (Status, error) {
	st := Status{Name: r.p.name}
	cp, err := r.store.Load(ctx, r.p.name)
	if err != nil {
		return st, fmt.Errorf("projection %q: status: %w", r.p.name, err)
	}
	st.Checkpoint = cp
	if st.Head, err = r.stream.Head(ctx); err != nil {
		return st, fmt.Errorf("projection %q: status: head: %w", r.p.name, err)
	}
	next, err := r.stream.Read(ctx, cp.Position, r.filter, 1)
	if err != nil {
		return st, fmt.Errorf("projection %q: status: %w", r.p.name, err)
	}
	if len(next) > 0 {
		st.LagEvents = max(st.Head-cp.Position, 1)
		st.Lag = max(r.cfg.Now().Sub(next[0].RecordedAt), 0)
	}
	return st, nil
}
