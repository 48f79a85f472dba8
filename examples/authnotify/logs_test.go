package main

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
)

// syncBuffer is a bytes.Buffer that the application's goroutines can
// write to while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Business refusals (an address already registered, a wrong password) are
// logged at INFO, not ERROR, and the logs, down to DEBUG, never show the
// email address or the password of a request.
func TestLogsShowRefusalsAtInfoAndNoPersonalData(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{"HTTP_ADDR": "127.0.0.1:0"}))
	require.NoError(t, err)
	var logs syncBuffer
	app := startLogging(t, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))

	const email, password = "ada.lovelace@example.com", "correct horse battery"
	register := map[string]string{"email": email, "password": password}
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, app.base+"/auth/register", "", register, nil))
	require.Equal(t, http.StatusConflict, call(t, http.MethodPost, app.base+"/auth/register", "", register, nil))
	require.Equal(t, http.StatusUnauthorized, call(t, http.MethodPost, app.base+"/auth/login", "",
		map[string]string{"email": "grace.hopper@example.com", "password": password}, nil))

	// The dev mailbox is the embedded mode's email provider: printing the
	// emails it "sends" is its job. Every other line counts.
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(l, `msg="dev mailbox: email sent"`) {
			lines = append(lines, l)
		}
	}
	out := strings.Join(lines, "\n")
	require.Contains(t, out, `level=INFO msg="cqrs: command refused" kind=command name=auth.register_user`, "the taken address is a refusal")
	require.Contains(t, out, `level=INFO msg="cqrs: query refused" kind=query name=auth.login`, "so are wrong credentials")
	require.NotContains(t, out, `level=ERROR`)
	for _, secret := range []string{"ada.lovelace", "grace.hopper", "correct horse"} {
		require.NotContains(t, out, secret)
	}
}
