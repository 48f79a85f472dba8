package adapters_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/notification/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

func TestEmailJobArgsRoundTrip(t *testing.T) {
	t.Parallel()
	job := domain.EmailJob{
		ID: "evt-1", Kind: domain.KindVerificationCode, To: "ada@example.com", UserID: "u-1",
		EncryptedCode: "v1.sealed", CodeExpiresAt: time.Date(2026, 3, 1, 12, 10, 0, 0, time.UTC), OccurredAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
	args := adapters.NewEmailJobArgs(job)
	require.Equal(t, job, args.Job())
	require.Equal(t, adapters.EmailJobKind, args.Kind())
	opts := args.InsertOpts()
	require.Equal(t, adapters.EmailQueue, opts.Queue)
	require.True(t, opts.UniqueOpts.ByArgs, "unique by the event ID")
	require.Contains(t, opts.UniqueOpts.ByState, rivertype.JobStateCompleted)
	require.Contains(t, opts.UniqueOpts.ByState, rivertype.JobStateCancelled)
}

func TestEmailWorkerSpeaksRiver(t *testing.T) {
	t.Parallel()
	job := func(metadata string) *river.Job[adapters.EmailJobArgs] {
		return &river.Job[adapters.EmailJobArgs]{
			JobRow: &rivertype.JobRow{Attempt: 1, Metadata: []byte(metadata)},
			Args:   adapters.EmailJobArgs{EventID: "evt-1", EmailKind: domain.KindWelcome, To: "ada@example.com", UserID: "u-1"},
		}
	}
	boom := errors.New("boom")
	for _, tc := range []struct {
		name     string
		err      error
		metadata string
		check    func(t *testing.T, err error)
	}{
		{"success", nil, "{}", func(t *testing.T, err error) { require.NoError(t, err) }},
		{"permanent cancels", app.Permanent(boom), "{}", func(t *testing.T, err error) {
			var cancel *river.JobCancelError
			require.ErrorAs(t, err, &cancel)
			require.ErrorIs(t, err, boom)
		}},
		{"retry-after snoozes", app.RetryAfter(boom, 3*time.Second), "{}", func(t *testing.T, err error) {
			var snooze *river.JobSnoozeError
			require.ErrorAs(t, err, &snooze)
			require.Equal(t, 3*time.Second, snooze.Duration)
		}},
		{"too many snoozes count as an attempt", app.RetryAfter(boom, 3*time.Second), `{"snoozes": 20}`, func(t *testing.T, err error) {
			var snooze *river.JobSnoozeError
			require.NotErrorAs(t, err, &snooze)
			require.ErrorIs(t, err, boom)
		}},
		{"other errors are retried by River", boom, "{}", func(t *testing.T, err error) {
			require.ErrorIs(t, err, boom)
			var cancel *river.JobCancelError
			require.NotErrorAs(t, err, &cancel)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got domain.EmailJob
			w, err := adapters.NewEmailWorker(func(_ context.Context, j domain.EmailJob) error { got = j; return tc.err }, quiet())
			require.NoError(t, err)
			tc.check(t, w.Work(context.Background(), job(tc.metadata)))
			require.Equal(t, "evt-1", got.ID)
		})
	}
}
