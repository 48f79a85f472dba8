package app_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type queue struct {
	mu   sync.Mutex
	jobs []domain.EmailJob
	err  error
}

func (q *queue) Enqueue(_ context.Context, job domain.EmailJob) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return q.err
	}
	q.jobs = append(q.jobs, job)
	return nil
}

type sender struct {
	sent []domain.Email
	err  error
}

func (s *sender) Send(_ context.Context, e domain.Email) error {
	if s.err != nil {
		return s.err
	}
	s.sent = append(s.sent, e)
	return nil
}

func newCipher(t *testing.T) *fieldcrypt.Cipher {
	t.Helper()
	c, err := fieldcrypt.New(bytes.Repeat([]byte{2}, fieldcrypt.KeySize))
	require.NoError(t, err)
	return c
}

func seal(t *testing.T, c *fieldcrypt.Cipher, code, userID string) string {
	t.Helper()
	s, err := c.Seal(code, userID)
	require.NoError(t, err)
	return s
}

var ctx = context.Background()

func TestEachEventQueuesOneJob(t *testing.T) {
	t.Parallel()
	c := newCipher(t)
	q := &queue{}
	h, err := app.NewEventHandlers(q, c)
	require.NoError(t, err)

	sealed := seal(t, c, "123456", "u1")
	require.NoError(t, h.UserRegistered(ctx, authevents.UserRegistered{UserID: "u1", Email: "ada@example.com", EncryptedCode: sealed, CodeExpiresAt: t0.Add(10 * time.Minute), RegisteredAt: t0}, app.Source{EventID: "e1", OccurredAt: t0}))
	require.NoError(t, h.UserOtpRequested(ctx, authevents.UserOtpRequested{UserID: "u1", Email: "ada@example.com", EncryptedCode: sealed, CodeExpiresAt: t0.Add(11 * time.Minute), RequestedAt: t0.Add(time.Minute)}, app.Source{EventID: "e2"}))
	require.NoError(t, h.UserVerified(ctx, authevents.UserVerified{UserID: "u1", Email: "ada@example.com"}, app.Source{EventID: "e3", OccurredAt: t0.Add(2 * time.Minute)}))
	require.NoError(t, h.PasswordChanged(ctx, authevents.PasswordChanged{UserID: "u1", Email: "ada@example.com", ChangedAt: t0.Add(3 * time.Minute)}, app.Source{EventID: "e4"}))
	require.NoError(t, h.PasswordResetRequested(ctx, authevents.PasswordResetRequested{UserID: "u1", Email: "ada@example.com", EncryptedCode: sealed, CodeExpiresAt: t0.Add(14 * time.Minute), RequestedAt: t0.Add(4 * time.Minute)}, app.Source{EventID: "e5"}))

	require.Equal(t, []domain.EmailJob{
		{ID: "e1", Kind: domain.KindVerificationCode, To: "ada@example.com", UserID: "u1", EncryptedCode: sealed, CodeExpiresAt: t0.Add(10 * time.Minute), OccurredAt: t0},
		{ID: "e2", Kind: domain.KindNewCode, To: "ada@example.com", UserID: "u1", EncryptedCode: sealed, CodeExpiresAt: t0.Add(11 * time.Minute), OccurredAt: t0.Add(time.Minute)},
		{ID: "e3", Kind: domain.KindWelcome, To: "ada@example.com", UserID: "u1", OccurredAt: t0.Add(2 * time.Minute)},
		{ID: "e4", Kind: domain.KindPasswordChanged, To: "ada@example.com", UserID: "u1", OccurredAt: t0.Add(3 * time.Minute)},
		{ID: "e5", Kind: domain.KindPasswordReset, To: "ada@example.com", UserID: "u1", EncryptedCode: sealed, CodeExpiresAt: t0.Add(14 * time.Minute), OccurredAt: t0.Add(4 * time.Minute)},
	}, q.jobs, "job ID = event ID; the code stays sealed in the job")
}

func TestEventsThatCanNeverBecomeAnEmailFailPermanently(t *testing.T) {
	t.Parallel()
	c := newCipher(t)
	q := &queue{}
	h, err := app.NewEventHandlers(q, c)
	require.NoError(t, err)

	for name, call := range map[string]func() error{
		"code sealed for another user": func() error {
			return h.UserRegistered(ctx, authevents.UserRegistered{UserID: "u1", Email: "ada@example.com", EncryptedCode: seal(t, c, "123456", "u2")}, app.Source{EventID: "e1"})
		},
		"code not sealed": func() error {
			return h.UserOtpRequested(ctx, authevents.UserOtpRequested{UserID: "u1", Email: "ada@example.com", EncryptedCode: "123456"}, app.Source{EventID: "e1"})
		},
		"no code": func() error {
			return h.UserRegistered(ctx, authevents.UserRegistered{UserID: "u1", Email: "ada@example.com"}, app.Source{EventID: "e1"})
		},
		"no address": func() error {
			return h.UserVerified(ctx, authevents.UserVerified{UserID: "u1"}, app.Source{EventID: "e1"})
		},
		"no event ID": func() error {
			return h.PasswordChanged(ctx, authevents.PasswordChanged{UserID: "u1", Email: "ada@example.com"}, app.Source{})
		},
	} {
		err := call()
		require.Error(t, err, name)
		require.True(t, app.IsPermanent(err), name)
	}
	require.Empty(t, q.jobs)

	q.err = errors.New("database down")
	err = h.UserVerified(ctx, authevents.UserVerified{UserID: "u1", Email: "ada@example.com"}, app.Source{EventID: "e1"})
	require.ErrorContains(t, err, "database down")
	require.False(t, app.IsPermanent(err), "a queue outage is retried")
}

func TestMailerDeliver(t *testing.T) {
	t.Parallel()
	c := newCipher(t)
	tpl, err := domain.NewTemplates("")
	require.NoError(t, err)
	s := &sender{}
	m, err := app.NewMailer(s, c, tpl)
	require.NoError(t, err)

	job := domain.EmailJob{ID: "e1", Kind: domain.KindVerificationCode, To: "ada@example.com", UserID: "u1",
		EncryptedCode: seal(t, c, "654321", "u1"), CodeExpiresAt: t0.Add(10 * time.Minute), OccurredAt: t0}
	require.NoError(t, m.Deliver(ctx, job))
	require.Len(t, s.sent, 1)
	require.Equal(t, "e1", s.sent[0].IdempotencyKey)
	require.Contains(t, s.sent[0].Text, "654321")

	bad := job
	bad.EncryptedCode = seal(t, c, "654321", "someone-else")
	err = m.Deliver(ctx, bad)
	require.True(t, app.IsPermanent(err))

	invalid := job
	invalid.To = ""
	require.True(t, app.IsPermanent(m.Deliver(ctx, invalid)))

	s.err = app.Permanent(errors.New("422 invalid recipient"))
	require.True(t, app.IsPermanent(m.Deliver(ctx, job)), "the sender's classification passes through")
	s.err = app.RetryAfter(errors.New("429"), 7*time.Second)
	err = m.Deliver(ctx, job)
	require.False(t, app.IsPermanent(err))
	hint, ok := app.RetryAfterHint(err)
	require.True(t, ok)
	require.Equal(t, 7*time.Second, hint)
}

func TestConstructorsValidate(t *testing.T) {
	t.Parallel()
	_, err := app.NewEventHandlers(nil, nil)
	require.ErrorContains(t, err, "queue")
	require.ErrorContains(t, err, "code opener")
	_, err = app.NewMailer(nil, nil, nil)
	require.ErrorContains(t, err, "sender")
	require.ErrorContains(t, err, "templates")
}

func TestErrorHelpers(t *testing.T) {
	t.Parallel()
	base := errors.New("boom")
	p := app.Permanent(base)
	require.ErrorIs(t, p, base)
	require.ErrorIs(t, p, app.ErrPermanent)
	require.Equal(t, "boom", p.Error())
	require.NoError(t, app.Permanent(nil))
	require.False(t, app.IsPermanent(base))

	r := app.RetryAfter(base, time.Second)
	require.ErrorIs(t, r, base)
	require.Contains(t, r.Error(), "retry after 1s")
	require.NoError(t, app.RetryAfter(nil, time.Second))
	_, ok := app.RetryAfterHint(base)
	require.False(t, ok)
	_, ok = app.RetryAfterHint(app.RetryAfter(base, 0))
	require.False(t, ok, "a zero hint is no hint")
}
