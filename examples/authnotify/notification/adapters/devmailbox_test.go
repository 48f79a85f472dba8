package adapters_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/notification/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

var _ app.EmailSender = (*adapters.DevMailbox)(nil)

func TestDevMailbox(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := adapters.NewDevMailbox(&adapters.DevMailboxConfig{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Clock:  func() time.Time { now = now.Add(time.Second); return now },
	})
	ctx := context.Background()
	require.NoError(t, m.Send(ctx, domain.Email{To: "ada@example.com", Subject: "first", Text: "code 123456", HTML: "<p>", IdempotencyKey: "evt-1"}))
	require.NoError(t, m.Send(ctx, domain.Email{To: "bob@example.com", Subject: "second", Text: "hi", IdempotencyKey: "evt-2"}))
	require.NoError(t, m.Send(ctx, domain.Email{To: "ada@example.com", Subject: "first again", IdempotencyKey: "evt-1"}), "same key: accepted, not sent again")

	sent := m.Sent()
	require.Len(t, sent, 2)
	require.Equal(t, "first", sent[0].Subject, "oldest first")
	require.Equal(t, "second", sent[1].Subject)
	require.Equal(t, "<p>", sent[0].HTML)
	require.Contains(t, logs.String(), "dev mailbox: email sent")
	require.Contains(t, logs.String(), "code 123456", "every email is logged, text included")

	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/dev/emails", nil))
	require.Equal(t, 200, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.JSONEq(t, `[
		{"to":"ada@example.com","subject":"first","text":"code 123456","sentAt":"2026-03-01T12:00:01Z"},
		{"to":"bob@example.com","subject":"second","text":"hi","sentAt":"2026-03-01T12:00:02Z"}
	]`, w.Body.String())
}

func TestDevMailboxEmptyIsAnEmptyArray(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	adapters.NewDevMailbox(&adapters.DevMailboxConfig{Logger: quiet()}).Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/dev/emails", nil))
	var got []any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	require.NotNil(t, got)
	require.Empty(t, got)
}

func TestDevMailboxKeepsTheNewest(t *testing.T) {
	t.Parallel()
	m := adapters.NewDevMailbox(&adapters.DevMailboxConfig{Logger: quiet(), Capacity: 2})
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c"} {
		require.NoError(t, m.Send(ctx, domain.Email{Subject: s, IdempotencyKey: s}))
	}
	sent := m.Sent()
	require.Equal(t, []string{"b", "c"}, []string{sent[0].Subject, sent[1].Subject})
}
