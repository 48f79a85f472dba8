package adapters_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/notification/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

type resendCall struct {
	key, auth string
	body      map[string]any
}

// fakeResend answers every POST /emails with the given status, headers and
// body, and records the requests.
func fakeResend(t *testing.T, status int, header map[string]string, body string) (*adapters.Resend, func() []resendCall) {
	t.Helper()
	var mu sync.Mutex
	var calls []resendCall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]any
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		calls = append(calls, resendCall{key: r.Header.Get("Idempotency-Key"), auth: r.Header.Get("Authorization"), body: b})
		mu.Unlock()
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	r, err := adapters.NewResend(adapters.ResendConfig{
		APIKey: "re_test", From: "authnotify <no-reply@example.com>", BaseURL: srv.URL, HTTPClient: srv.Client(), Logger: quiet(),
		Clock: func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) },
	})
	require.NoError(t, err)
	return r, func() []resendCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]resendCall(nil), calls...)
	}
}

var testEmail = domain.Email{
	To: "ada@example.com", Subject: "Welcome", Text: "Hello", HTML: "<p>Hello</p>",
	IdempotencyKey: "evt-1", Kind: domain.KindWelcome,
}

func TestResendSendsWithIdempotencyKey(t *testing.T) {
	t.Parallel()
	r, calls := fakeResend(t, http.StatusOK, nil, `{"id":"email-1"}`)
	require.NoError(t, r.Send(context.Background(), testEmail))
	got := calls()
	require.Len(t, got, 1)
	require.Equal(t, "evt-1", got[0].key)
	require.Equal(t, "Bearer re_test", got[0].auth)
	require.Equal(t, "authnotify <no-reply@example.com>", got[0].body["from"])
	require.Equal(t, []any{"ada@example.com"}, got[0].body["to"])
	require.Equal(t, "Welcome", got[0].body["subject"])
	require.Equal(t, "Hello", got[0].body["text"])
	require.Equal(t, "<p>Hello</p>", got[0].body["html"])
}

func TestResendClassifiesFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		status    int
		header    map[string]string
		permanent bool
		retryIn   time.Duration // 0: no hint
	}{
		{"429 with retry-after seconds", http.StatusTooManyRequests, map[string]string{"Retry-After": "7"}, false, 7 * time.Second},
		{"429 without retry-after", http.StatusTooManyRequests, nil, false, 0},
		{"503 with retry-after date", http.StatusServiceUnavailable, map[string]string{"Retry-After": "Sun, 01 Mar 2026 12:00:30 GMT"}, false, 30 * time.Second},
		{"500", http.StatusInternalServerError, nil, false, 0},
		{"422 invalid", http.StatusUnprocessableEntity, nil, true, 0},
		{"400", http.StatusBadRequest, nil, true, 0},
		{"401 bad key", http.StatusUnauthorized, nil, true, 0},
		{"403 unverified domain", http.StatusForbidden, nil, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, calls := fakeResend(t, tc.status, tc.header, `{"statusCode":0,"message":"no","name":"error"}`)
			err := r.Send(context.Background(), testEmail)
			require.Error(t, err)
			require.Len(t, calls(), 1)
			require.Equal(t, tc.permanent, app.IsPermanent(err), "%v", err)
			hint, ok := app.RetryAfterHint(err)
			require.Equal(t, tc.retryIn != 0, ok, "%v", err)
			require.Equal(t, tc.retryIn, hint)
		})
	}
}

func TestResendNetworkErrorIsRetryable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	r, err := adapters.NewResend(adapters.ResendConfig{APIKey: "re_test", From: "a@example.com", BaseURL: url, Logger: quiet()})
	require.NoError(t, err)
	err = r.Send(context.Background(), testEmail)
	require.Error(t, err)
	require.False(t, app.IsPermanent(err))
}

func TestNewResendChecksItsConfig(t *testing.T) {
	t.Parallel()
	_, err := adapters.NewResend(adapters.ResendConfig{BaseURL: "ftp://x"})
	require.Error(t, err)
	for _, want := range []string{"no API key", "no sender", "not an http(s) URL"} {
		require.ErrorContains(t, err, want)
	}
	require.False(t, errors.Is(err, app.ErrPermanent))
}
