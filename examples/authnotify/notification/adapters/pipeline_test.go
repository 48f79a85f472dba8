package adapters_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/retry"

	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
	"github.com/dddkit/dddkit/examples/authnotify/notification/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

// flakySender fails each email's first try the way a busy provider does.
type flakySender struct {
	next  app.EmailSender
	mu    sync.Mutex
	tried map[string]bool
}

func (f *flakySender) Send(ctx context.Context, e domain.Email) error {
	f.mu.Lock()
	first := !f.tried[e.IdempotencyKey]
	f.tried[e.IdempotencyKey] = true
	f.mu.Unlock()
	if first {
		return app.RetryAfter(errors.New("429 too many requests"), time.Millisecond)
	}
	return f.next.Send(ctx, e)
}

// The embedded notification pipeline: each auth event becomes exactly one
// email in the dev mailbox, with the code decrypted, even when the event
// is delivered twice and the provider fails the first try.
func TestEventsBecomeExactlyOneEmailEach(t *testing.T) {
	t.Parallel()
	cipher, err := fieldcrypt.New(bytes.Repeat([]byte{2}, fieldcrypt.KeySize))
	require.NoError(t, err)
	templates, err := domain.NewTemplates("")
	require.NoError(t, err)
	mailbox := adapters.NewDevMailbox(&adapters.DevMailboxConfig{Logger: quiet()})
	mailer, err := app.NewMailer(&flakySender{next: mailbox, tried: map[string]bool{}}, cipher, templates)
	require.NoError(t, err)
	queue, _ := start(t, mailer.Deliver, adapters.JobQueueConfig{Retry: retry.Policy{BaseDelay: time.Millisecond}})
	handlers, err := app.NewEventHandlers(queue, cipher)
	require.NoError(t, err)

	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	seal := func(code string) string {
		s, err := cipher.Seal(code, "user-1")
		require.NoError(t, err)
		return s
	}
	ctx := context.Background()
	deliver := func() {
		require.NoError(t, handlers.UserRegistered(ctx, authevents.UserRegistered{UserID: "user-1", Email: "ada@example.com", EncryptedCode: seal("111111"), CodeExpiresAt: t0.Add(10 * time.Minute), RegisteredAt: t0}, app.Source{EventID: "evt-1", OccurredAt: t0}))
		require.NoError(t, handlers.UserOtpRequested(ctx, authevents.UserOtpRequested{UserID: "user-1", Email: "ada@example.com", EncryptedCode: seal("222222"), CodeExpiresAt: t0.Add(11 * time.Minute), RequestedAt: t0.Add(time.Minute)}, app.Source{EventID: "evt-2"}))
		require.NoError(t, handlers.UserVerified(ctx, authevents.UserVerified{UserID: "user-1", Email: "ada@example.com", VerifiedAt: t0.Add(2 * time.Minute)}, app.Source{EventID: "evt-3"}))
		require.NoError(t, handlers.PasswordChanged(ctx, authevents.PasswordChanged{UserID: "user-1", Email: "ada@example.com", ChangedAt: t0.Add(3 * time.Minute)}, app.Source{EventID: "evt-4"}))
	}
	deliver()
	deliver() // at-least-once delivery: every event comes twice

	require.Eventually(t, func() bool { return len(mailbox.Sent()) == 4 && queue.Stats().Pending == 0 }, 5*time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond) // nothing more arrives
	sent := mailbox.Sent()
	require.Len(t, sent, 4)
	subjects := map[string]string{}
	for _, s := range sent {
		require.Equal(t, "ada@example.com", s.To)
		subjects[s.Subject] = s.Text
	}
	require.Contains(t, subjects["Your authnotify verification code"], "111111")
	require.Contains(t, subjects["Your new authnotify verification code"], "222222")
	require.Contains(t, subjects, "Welcome to authnotify")
	require.Contains(t, subjects["Your authnotify password was changed"], "12:03 UTC")
	for _, s := range sent {
		require.False(t, strings.Contains(s.Text, "v1."), "no ciphertext in an email")
	}
	st := queue.Stats()
	require.EqualValues(t, 4, st.Enqueued)
	require.EqualValues(t, 4, st.Duplicates)
	require.EqualValues(t, 4, st.Retried, "each first try was a 429")
	require.EqualValues(t, 4, st.Succeeded)
}
