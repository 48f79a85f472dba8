package adapters

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dddkit/dddkit/retry"

	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

// ErrQueueStopped is returned by [JobQueue.Enqueue] after [JobQueue.Stop].
var ErrQueueStopped = errors.New("notification: job queue stopped")

// WorkFunc carries out one job; app.Mailer.Deliver is one.
type WorkFunc func(ctx context.Context, job domain.EmailJob) error

// JobQueueConfig configures a [JobQueue]; nil means the defaults.
type JobQueueConfig struct {
	// Workers is how many jobs run at once; 0 means 2.
	Workers int
	// Retry bounds the attempts of a job, the first included, and the
	// backoff between them (see retry.Policy: the wait bound doubles from
	// BaseDelay up to MaxDelay, the wait is drawn between half the bound
	// and the bound). Zero fields mean 10 attempts, a BaseDelay of 1s and
	// a MaxDelay of 5 minutes.
	Retry retry.Policy
	// MaxRetryAfter caps a sender's retry-after hint, which is otherwise
	// honoured as given (instead of the backoff); 0 means 1 hour.
	MaxRetryAfter time.Duration
	// JobTimeout bounds one attempt; 0 means 30s.
	JobTimeout time.Duration
	// UniqueFor is how long a job ID is remembered: a job with the same ID
	// enqueued within it is dropped. 0 means 24 hours.
	UniqueFor time.Duration
	// Logger gets a line for every retry and every failed job; nil means
	// slog.Default().
	Logger *slog.Logger
	// OnAttempt, if set, is called after every attempt with its number
	// (from 1), its error, and the wait before the next attempt (0 when
	// there is none: the job succeeded or failed for good). For metrics
	// and tests.
	OnAttempt func(job domain.EmailJob, attempt int, err error, retryIn time.Duration)
}

func (c JobQueueConfig) withDefaults() (JobQueueConfig, error) {
	var errs []error
	for name, v := range map[string]int64{
		"Workers": int64(c.Workers), "MaxRetryAfter": int64(c.MaxRetryAfter), "JobTimeout": int64(c.JobTimeout),
		"UniqueFor": int64(c.UniqueFor),
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("notification: JobQueueConfig.%s is negative", name))
		}
	}
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("notification: JobQueueConfig.Retry: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Workers == 0 {
		c.Workers = 2
	}
	c.Retry = c.Retry.WithDefaults(retry.Policy{MaxAttempts: 10, BaseDelay: time.Second, MaxDelay: 5 * time.Minute})
	def(&c.MaxRetryAfter, time.Hour)
	def(&c.JobTimeout, 30*time.Second)
	def(&c.UniqueFor, 24*time.Hour)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// JobStats are a [JobQueue]'s counters since it was made.
type JobStats struct {
	Enqueued   int64 // jobs accepted
	Duplicates int64 // jobs dropped because their ID was seen
	Succeeded  int64 // jobs done
	Retried    int64 // attempts that failed and were scheduled again
	Failed     int64 // jobs given up: permanent error or attempts used up
	Pending    int   // jobs waiting to run, now or after a backoff
	Running    int   // jobs running now
}

// JobQueue is an in-process [app.EmailJobQueue]: jobs live in memory and
// run on a few worker goroutines, with the retry behaviour of the
// production queue (see the package documentation). It is not durable:
// jobs still pending when the process stops are lost, which is why
// production uses River on PostgreSQL. It is safe for concurrent use.
//
// Enqueue may be called before [JobQueue.Start]; jobs then wait.
type JobQueue struct {
	work WorkFunc
	cfg  JobQueueConfig

	mu        sync.Mutex
	ready     []*queuedJob
	scheduled map[*queuedJob]*time.Timer
	seen      map[string]time.Time
	lastPrune time.Time
	stats     JobStats
	started   bool
	stopped   bool

	wake       chan struct{}
	takeCtx    context.Context // canceled by Stop: take no new job
	cancelTake context.CancelFunc
	workCtx    context.Context // canceled when Stop gives up waiting
	cancelWork context.CancelFunc
	wg         sync.WaitGroup
}

type queuedJob struct {
	job      domain.EmailJob
	attempts int
}

// NewJobQueue returns a stopped queue that runs jobs with work.
func NewJobQueue(work WorkFunc, cfg *JobQueueConfig) (*JobQueue, error) {
	if work == nil {
		return nil, errors.New("notification: NewJobQueue: nil work function")
	}
	var c JobQueueConfig
	if cfg != nil {
		c = *cfg
	}
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	return &JobQueue{
		work:      work,
		cfg:       c,
		scheduled: map[*queuedJob]*time.Timer{},
		seen:      map[string]time.Time{},
		wake:      make(chan struct{}, 1),
	}, nil
}

// Enqueue implements app.EmailJobQueue: it accepts job unless a job with
// the same ID was enqueued within UniqueFor, in which case it drops it and
// returns nil.
func (q *JobQueue) Enqueue(_ context.Context, job domain.EmailJob) error {
	if err := job.Validate(); err != nil {
		return app.Permanent(err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped {
		return ErrQueueStopped
	}
	now := time.Now()
	q.pruneLocked(now)
	if at, ok := q.seen[job.ID]; ok && now.Sub(at) < q.cfg.UniqueFor {
		q.stats.Duplicates++
		return nil
	}
	q.seen[job.ID] = now
	q.stats.Enqueued++
	q.ready = append(q.ready, &queuedJob{job: job})
	q.signal()
	return nil
}

// pruneLocked forgets job IDs older than UniqueFor, at most once a minute.
func (q *JobQueue) pruneLocked(now time.Time) {
	if now.Sub(q.lastPrune) < time.Minute {
		return
	}
	q.lastPrune = now
	for id, at := range q.seen {
		if now.Sub(at) >= q.cfg.UniqueFor {
			delete(q.seen, id)
		}
	}
}

func (q *JobQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Start starts the workers. Canceling ctx stops the queue hard, canceling
// running jobs; use [JobQueue.Stop] for a graceful stop. A queue starts
// once.
func (q *JobQueue) Start(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started || q.stopped {
		return errors.New("notification: job queue already started or stopped")
	}
	q.started = true
	q.workCtx, q.cancelWork = context.WithCancel(ctx)
	q.takeCtx, q.cancelTake = context.WithCancel(q.workCtx)
	for range q.cfg.Workers {
		q.wg.Go(q.worker)
	}
	return nil
}

// Stop stops taking jobs and waits for the running ones to finish; when
// ctx ends first, it cancels them and returns ctx's error after they
// returned. Jobs that are still pending are dropped (and logged).
func (q *JobQueue) Stop(ctx context.Context) error {
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return nil
	}
	q.stopped = true
	for _, t := range q.scheduled {
		t.Stop()
	}
	dropped := len(q.ready) + len(q.scheduled)
	q.ready, q.scheduled = nil, map[*queuedJob]*time.Timer{}
	started := q.started
	q.mu.Unlock()
	if dropped > 0 {
		q.cfg.Logger.Warn("notification: job queue stopped with pending jobs; they are lost", slog.Int("jobs", dropped))
	}
	if !started {
		return nil
	}
	q.cancelTake()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		q.cancelWork()
		return nil
	case <-ctx.Done():
		q.cancelWork()
		<-done
		return ctx.Err()
	}
}

// Stats returns the queue's counters.
func (q *JobQueue) Stats() JobStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := q.stats
	s.Pending = len(q.ready) + len(q.scheduled)
	return s
}

func (q *JobQueue) worker() {
	for {
		j, ok := q.next()
		if !ok {
			select {
			case <-q.wake:
				continue
			case <-q.takeCtx.Done():
				return
			}
		}
		q.run(j)
	}
}

// next takes the oldest ready job, unless the queue is stopping.
func (q *JobQueue) next() (*queuedJob, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.takeCtx.Err() != nil || len(q.ready) == 0 {
		return nil, false
	}
	j := q.ready[0]
	q.ready[0] = nil
	q.ready = q.ready[1:]
	q.stats.Running++
	if len(q.ready) > 0 {
		q.signal() // another worker may take the next one
	}
	return j, true
}

func (q *JobQueue) run(j *queuedJob) {
	// j is ours until it is scheduled again; after that a timer and
	// another worker may touch it, so only these copies are used.
	j.attempts++
	job, n := j.job, j.attempts
	err := q.attempt(job)

	q.mu.Lock()
	q.stats.Running--
	var retryIn time.Duration
	switch {
	case err == nil:
		q.stats.Succeeded++
	case app.IsPermanent(err) || n >= q.cfg.Retry.MaxAttempts || q.stopped:
		q.stats.Failed++
	default:
		q.stats.Retried++
		retryIn = q.delay(n, err)
		q.scheduled[j] = time.AfterFunc(retryIn, func() { q.requeue(j) })
	}
	q.mu.Unlock()

	if q.cfg.OnAttempt != nil {
		q.cfg.OnAttempt(job, n, err, retryIn)
	}
	switch {
	case err == nil:
	case retryIn > 0:
		q.cfg.Logger.Warn("notification: email job failed, will retry",
			slog.String("job", job.ID), slog.String("kind", string(job.Kind)), slog.Int("attempt", n),
			slog.Duration("retryIn", retryIn), slog.Any("error", err))
	default:
		q.cfg.Logger.Error("notification: email job failed for good",
			slog.String("job", job.ID), slog.String("kind", string(job.Kind)), slog.Int("attempts", n),
			slog.Bool("permanent", app.IsPermanent(err)), slog.Any("error", err))
	}
}

// attempt runs the work function once, with a timeout, turning a panic
// into a permanent error.
func (q *JobQueue) attempt(job domain.EmailJob) (err error) {
	ctx, cancel := context.WithTimeout(q.workCtx, q.cfg.JobTimeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			err = app.Permanent(fmt.Errorf("notification: email job %s panicked: %v", job.ID, v))
		}
	}()
	return q.work(ctx, job)
}

// delay is the wait after a failed attempt: the sender's retry-after hint
// (capped at MaxRetryAfter), else the Retry policy's jittered exponential
// backoff.
func (q *JobQueue) delay(attempt int, err error) time.Duration {
	if hint, ok := app.RetryAfterHint(err); ok {
		return min(hint, q.cfg.MaxRetryAfter)
	}
	return q.cfg.Retry.Delay(attempt)
}

func (q *JobQueue) requeue(j *queuedJob) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.scheduled[j]; !ok { // stopped meanwhile
		return
	}
	delete(q.scheduled, j)
	q.ready = append(q.ready, j)
	q.signal()
}
