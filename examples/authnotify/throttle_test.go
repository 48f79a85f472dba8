package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
)

// Issue 9, row 4: after 5 failed logins for one account, every login for
// it, the right password included, answers 429 with Retry-After (30 s, the
// first back-off); other accounts are not affected. Past
// LOGIN_LIMIT_PER_ADDRESS failures a minute, the client address gets 429
// whatever the account. (The back-off's doubling, its cap and the reset on
// success are tested with a fake clock in internal/throttle, on memory
// and on PostgreSQL.)
func TestLoginsAreThrottled(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{"HTTP_ADDR": "127.0.0.1:0", "LOGIN_LIMIT_PER_ADDRESS": "8"}))
	require.NoError(t, err)
	base := start(t, cfg).base

	const email, password = "target@example.com", "correct horse battery"
	require.Equal(t, http.StatusCreated, post(t, base+"/auth/register", map[string]string{"email": email, "password": password}).status)
	// The right password on an unverified account: 403, no failure.
	require.Equal(t, http.StatusForbidden, post(t, base+"/auth/login", map[string]string{"email": email, "password": password}).status)
	for i := range 5 {
		a := post(t, base+"/auth/login", map[string]string{"email": strings.ToUpper(email), "password": "wrong password"})
		require.Equal(t, http.StatusUnauthorized, a.status, "failure %d", i+1)
	}
	a := post(t, base+"/auth/login", map[string]string{"email": email, "password": password})
	require.Equal(t, http.StatusTooManyRequests, a.status, "locked, the right password too: %s", a.body)
	require.Equal(t, "30", a.header.Get("Retry-After"))
	require.Contains(t, string(a.body), "login-throttled")

	// Another account from the same address: still answered until the
	// address made 8 failures this minute.
	for i := range 3 {
		a := post(t, base+"/auth/login", map[string]string{"email": "other@example.com", "password": "wrong password"})
		require.Equal(t, http.StatusUnauthorized, a.status, "failure %d", i+1)
	}
	a = post(t, base+"/auth/login", map[string]string{"email": "third@example.com", "password": "wrong password"})
	require.Equal(t, http.StatusTooManyRequests, a.status, "address limit: %s", a.body)
	require.NotEmpty(t, a.header.Get("Retry-After"))
}
