package adapters_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/retry"

	"github.com/dddkit/dddkit/examples/authnotify/notification/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

var _ app.EmailJobQueue = (*adapters.JobQueue)(nil)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func welcome(id string) domain.EmailJob {
	return domain.EmailJob{ID: id, Kind: domain.KindWelcome, To: "ada@example.com", UserID: "u1"}
}

type attempt struct {
	n       int
	err     error
	retryIn time.Duration
}

// recorder collects OnAttempt calls.
type recorder struct {
	mu       sync.Mutex
	attempts map[string][]attempt
}

func (r *recorder) on(job domain.EmailJob, n int, err error, retryIn time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.attempts == nil {
		r.attempts = map[string][]attempt{}
	}
	r.attempts[job.ID] = append(r.attempts[job.ID], attempt{n, err, retryIn})
}

func (r *recorder) of(id string) []attempt {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]attempt(nil), r.attempts[id]...)
}

func start(t *testing.T, work adapters.WorkFunc, cfg adapters.JobQueueConfig) (*adapters.JobQueue, *recorder) {
	t.Helper()
	rec := &recorder{}
	if cfg.OnAttempt == nil {
		cfg.OnAttempt = rec.on
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	q, err := adapters.NewJobQueue(work, &cfg)
	require.NoError(t, err)
	require.NoError(t, q.Start(context.Background()))
	t.Cleanup(func() { _ = q.Stop(context.Background()) })
	return q, rec
}

func waitIdle(t *testing.T, q *adapters.JobQueue) adapters.JobStats {
	t.Helper()
	require.Eventually(t, func() bool {
		s := q.Stats()
		return s.Pending == 0 && s.Running == 0
	}, 5*time.Second, time.Millisecond)
	return q.Stats()
}

func TestJobQueueRunsEachJobOnce(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	ran := map[string]int{}
	q, _ := start(t, func(_ context.Context, job domain.EmailJob) error {
		mu.Lock()
		defer mu.Unlock()
		ran[job.ID]++
		return nil
	}, adapters.JobQueueConfig{Workers: 4})

	ctx := context.Background()
	for i := range 50 {
		require.NoError(t, q.Enqueue(ctx, welcome(fmt.Sprint("evt-", i))))
	}
	for i := range 50 {
		require.NoError(t, q.Enqueue(ctx, welcome(fmt.Sprint("evt-", i))), "a duplicate is not an error")
	}
	s := waitIdle(t, q)
	require.EqualValues(t, 50, s.Enqueued)
	require.EqualValues(t, 50, s.Duplicates)
	require.EqualValues(t, 50, s.Succeeded)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, ran, 50)
	for id, n := range ran {
		require.Equal(t, 1, n, id)
	}
}

func TestJobQueueRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	q, rec := start(t, func(context.Context, domain.EmailJob) error {
		if calls.Add(1) < 4 {
			return errors.New("provider returned 503")
		}
		return nil
	}, adapters.JobQueueConfig{Retry: retry.Policy{BaseDelay: 4 * time.Millisecond, MaxDelay: 10 * time.Millisecond}})

	require.NoError(t, q.Enqueue(context.Background(), welcome("evt-1")))
	s := waitIdle(t, q)
	require.EqualValues(t, 1, s.Succeeded)
	require.EqualValues(t, 3, s.Retried)
	require.Zero(t, s.Failed)

	got := rec.of("evt-1")
	require.Len(t, got, 4)
	// Bounds double from BaseDelay, capped at MaxDelay; each wait is in [bound/2, bound].
	for i, bound := range []time.Duration{4 * time.Millisecond, 8 * time.Millisecond, 10 * time.Millisecond} {
		require.Equal(t, i+1, got[i].n)
		require.Error(t, got[i].err)
		require.GreaterOrEqual(t, got[i].retryIn, bound/2, "attempt %d", i+1)
		require.LessOrEqual(t, got[i].retryIn, bound, "attempt %d", i+1)
	}
	require.NoError(t, got[3].err)
	require.Zero(t, got[3].retryIn)
}

func TestJobQueuePermanentErrorsAreNotRetried(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	q, rec := start(t, func(context.Context, domain.EmailJob) error {
		calls.Add(1)
		return app.Permanent(errors.New("provider returned 422: invalid recipient"))
	}, adapters.JobQueueConfig{Retry: retry.Policy{BaseDelay: time.Millisecond}})

	require.NoError(t, q.Enqueue(context.Background(), welcome("evt-1")))
	s := waitIdle(t, q)
	require.EqualValues(t, 1, calls.Load())
	require.EqualValues(t, 1, s.Failed)
	require.Zero(t, s.Retried)
	require.Zero(t, rec.of("evt-1")[0].retryIn)
}

func TestJobQueueGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	q, _ := start(t, func(context.Context, domain.EmailJob) error {
		calls.Add(1)
		return errors.New("timeout")
	}, adapters.JobQueueConfig{Retry: retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond}})

	require.NoError(t, q.Enqueue(context.Background(), welcome("evt-1")))
	s := waitIdle(t, q)
	require.EqualValues(t, 3, calls.Load())
	require.EqualValues(t, 2, s.Retried)
	require.EqualValues(t, 1, s.Failed)
}

func TestJobQueueHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var times []time.Time
	q, rec := start(t, func(context.Context, domain.EmailJob) error {
		mu.Lock()
		defer mu.Unlock()
		times = append(times, time.Now())
		if len(times) == 1 {
			return app.RetryAfter(errors.New("provider returned 429"), 60*time.Millisecond)
		}
		return nil
	}, adapters.JobQueueConfig{Retry: retry.Policy{BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}})

	require.NoError(t, q.Enqueue(context.Background(), welcome("evt-1")))
	waitIdle(t, q)
	got := rec.of("evt-1")
	require.Len(t, got, 2)
	require.Equal(t, 60*time.Millisecond, got[0].retryIn, "the hint, not the (much shorter) backoff")
	mu.Lock()
	defer mu.Unlock()
	require.GreaterOrEqual(t, times[1].Sub(times[0]), 60*time.Millisecond)
}

func TestJobQueueCapsRetryAfter(t *testing.T) {
	t.Parallel()
	q, rec := start(t, func(_ context.Context, job domain.EmailJob) error {
		return app.RetryAfter(errors.New("429"), time.Hour)
	}, adapters.JobQueueConfig{MaxRetryAfter: 5 * time.Millisecond, Retry: retry.Policy{MaxAttempts: 2}})
	require.NoError(t, q.Enqueue(context.Background(), welcome("evt-1")))
	waitIdle(t, q)
	require.Equal(t, 5*time.Millisecond, rec.of("evt-1")[0].retryIn)
}

func TestJobQueueSurvivesAPanic(t *testing.T) {
	t.Parallel()
	q, rec := start(t, func(_ context.Context, job domain.EmailJob) error {
		if job.ID == "evt-bad" {
			panic("template exploded")
		}
		return nil
	}, adapters.JobQueueConfig{Workers: 1})
	ctx := context.Background()
	require.NoError(t, q.Enqueue(ctx, welcome("evt-bad")))
	require.NoError(t, q.Enqueue(ctx, welcome("evt-good")))
	s := waitIdle(t, q)
	require.EqualValues(t, 1, s.Failed)
	require.EqualValues(t, 1, s.Succeeded)
	require.True(t, app.IsPermanent(rec.of("evt-bad")[0].err))
}

func TestJobQueueTimesOutAnAttempt(t *testing.T) {
	t.Parallel()
	q, rec := start(t, func(ctx context.Context, _ domain.EmailJob) error {
		<-ctx.Done()
		return ctx.Err()
	}, adapters.JobQueueConfig{JobTimeout: 10 * time.Millisecond, Retry: retry.Policy{MaxAttempts: 1}})
	require.NoError(t, q.Enqueue(context.Background(), welcome("evt-1")))
	waitIdle(t, q)
	require.ErrorIs(t, rec.of("evt-1")[0].err, context.DeadlineExceeded)
}

func TestJobQueueRejectsInvalidJobs(t *testing.T) {
	t.Parallel()
	q, _ := start(t, func(context.Context, domain.EmailJob) error { return nil }, adapters.JobQueueConfig{})
	err := q.Enqueue(context.Background(), domain.EmailJob{ID: "x"})
	require.Error(t, err)
	require.True(t, app.IsPermanent(err))
}

func TestJobQueueEnqueueBeforeStart(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	q, err := adapters.NewJobQueue(func(context.Context, domain.EmailJob) error { calls.Add(1); return nil }, &adapters.JobQueueConfig{Logger: quiet()})
	require.NoError(t, err)
	require.NoError(t, q.Enqueue(context.Background(), welcome("evt-1")))
	require.Equal(t, 1, q.Stats().Pending)
	require.NoError(t, q.Start(context.Background()))
	require.Error(t, q.Start(context.Background()), "starts once")
	waitIdle(t, q)
	require.EqualValues(t, 1, calls.Load())
	require.NoError(t, q.Stop(context.Background()))
}

func TestJobQueueStopWaitsForRunningJobsAndDropsPending(t *testing.T) {
	t.Parallel()
	running := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	q, err := adapters.NewJobQueue(func(ctx context.Context, job domain.EmailJob) error {
		if job.ID == "evt-slow" {
			close(running)
			<-release
			finished.Store(true)
			return nil
		}
		return errors.New("retry me later")
	}, &adapters.JobQueueConfig{Workers: 1, Logger: quiet(), Retry: retry.Policy{BaseDelay: time.Hour}})
	require.NoError(t, err)
	require.NoError(t, q.Start(context.Background()))
	ctx := context.Background()
	require.NoError(t, q.Enqueue(ctx, welcome("evt-slow")))
	<-running
	require.NoError(t, q.Enqueue(ctx, welcome("evt-waiting")))

	stopped := make(chan error)
	go func() { stopped <- q.Stop(context.Background()) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned while a job was running")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-stopped)
	require.True(t, finished.Load(), "the running job finished")
	require.Zero(t, q.Stats().Pending, "the pending job was dropped")
	require.ErrorIs(t, q.Enqueue(ctx, welcome("evt-late")), adapters.ErrQueueStopped)
	require.NoError(t, q.Stop(ctx), "stopping twice is fine")
}

func TestJobQueueStopCancelsJobsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	running := make(chan struct{})
	q, err := adapters.NewJobQueue(func(ctx context.Context, _ domain.EmailJob) error {
		close(running)
		<-ctx.Done()
		return ctx.Err()
	}, &adapters.JobQueueConfig{Workers: 1, Logger: quiet()})
	require.NoError(t, err)
	require.NoError(t, q.Start(context.Background()))
	require.NoError(t, q.Enqueue(context.Background(), welcome("evt-1")))
	<-running
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, q.Stop(ctx), context.DeadlineExceeded)
	require.Zero(t, q.Stats().Running)
}

func TestJobQueueConfigValidation(t *testing.T) {
	t.Parallel()
	work := func(context.Context, domain.EmailJob) error { return nil }
	_, err := adapters.NewJobQueue(nil, nil)
	require.Error(t, err)
	_, err = adapters.NewJobQueue(work, &adapters.JobQueueConfig{Workers: -1, Retry: retry.Policy{BaseDelay: -1}})
	require.ErrorContains(t, err, "Workers")
	require.ErrorContains(t, err, "Policy.BaseDelay is -1ns")
	_, err = adapters.NewJobQueue(work, &adapters.JobQueueConfig{Retry: retry.Policy{BaseDelay: time.Minute, MaxDelay: time.Second}})
	require.ErrorContains(t, err, "notification: JobQueueConfig.Retry: retry: Policy.BaseDelay (1m0s) is larger than MaxDelay (1s)")
	q, err := adapters.NewJobQueue(work, nil)
	require.NoError(t, err)
	require.NoError(t, q.Stop(context.Background()), "stop without start")
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for value, want := range map[string]time.Duration{
		"0": 0, "7": 7 * time.Second, " 120 ": 2 * time.Minute,
		"Sun, 01 Mar 2026 12:00:30 GMT": 30 * time.Second,
		"Sun, 01 Mar 2026 11:00:00 GMT": 0,
	} {
		got, ok := adapters.ParseRetryAfter(value, now)
		require.True(t, ok, value)
		require.Equal(t, want, got, value)
	}
	for _, value := range []string{"", "-1", "soon", "1.5", "99999999999"} {
		_, ok := adapters.ParseRetryAfter(value, now)
		require.False(t, ok, value)
	}
}
