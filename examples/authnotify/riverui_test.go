package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const testAdminPassword = "a long admin password"

// guarded returns adminGuard around a handler that counts what reaches it,
// with a throttle of 3 failures per minute on a clock the test moves.
func guarded(t *testing.T) (http.Handler, func() int, func(time.Duration)) {
	t.Helper()
	var mu sync.Mutex
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	reached := 0
	inner := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		reached++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	h := adminGuard(riverUIUser, testAdminPassword, newAuthThrottle(3, time.Minute, clock), inner)
	return h, func() int { mu.Lock(); defer mu.Unlock(); return reached }, advance
}

func adminRequest(method, remote, password string, headers ...string) *http.Request {
	r := httptest.NewRequest(method, "http://admin.example.com/admin/jobs/api/jobs/cancel", strings.NewReader(`{"ids":["1"]}`))
	r.RemoteAddr = remote
	if password != "" {
		r.SetBasicAuth(riverUIUser, password)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// A browser sends cached Basic credentials along with a request another
// site makes it send; the River UI's POST endpoints (cancel, retry, delete
// jobs) must refuse it.
func TestRiverUIRefusesCrossSiteRequests(t *testing.T) {
	t.Parallel()
	h, reached, _ := guarded(t)
	for name, hdrs := range map[string][]string{
		"Sec-Fetch-Site cross-site": {"Sec-Fetch-Site", "cross-site"},
		"Sec-Fetch-Site same-site":  {"Sec-Fetch-Site", "same-site"},
		"foreign Origin":            {"Origin", "https://evil.example"},
	} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
			rec := serve(h, adminRequest(method, "192.0.2.1:1234", testAdminPassword, hdrs...))
			require.Equal(t, http.StatusForbidden, rec.Code, "%s %s", name, method)
			require.Contains(t, rec.Body.String(), "cross-site")
		}
	}
	require.Zero(t, reached(), "no cross-site request reached the UI")

	// Same-origin browser requests, scripts without browser headers, and
	// reads from anywhere go through.
	for _, r := range []*http.Request{
		adminRequest(http.MethodPost, "192.0.2.1:1234", testAdminPassword, "Sec-Fetch-Site", "same-origin"),
		adminRequest(http.MethodPost, "192.0.2.1:1234", testAdminPassword, "Origin", "http://admin.example.com"),
		adminRequest(http.MethodPost, "192.0.2.1:1234", testAdminPassword),
		adminRequest(http.MethodGet, "192.0.2.1:1234", testAdminPassword, "Sec-Fetch-Site", "cross-site"),
	} {
		require.Equal(t, http.StatusNoContent, serve(h, r).Code, "%s %v", r.Method, r.Header)
	}
	require.Equal(t, 4, reached())
}

func TestRiverUIThrottlesFailedLogins(t *testing.T) {
	t.Parallel()
	h, reached, advance := guarded(t)
	const attacker, other = "198.51.100.7:5000", "203.0.113.9:6000"

	// Asking without credentials (the browser's first request) is no failure.
	for range 5 {
		require.Equal(t, http.StatusUnauthorized, serve(h, adminRequest(http.MethodGet, attacker, "")).Code)
	}
	for i := range 3 {
		rec := serve(h, adminRequest(http.MethodGet, attacker, "guess"+string(rune('a'+i))))
		require.Equal(t, http.StatusUnauthorized, rec.Code, i)
		require.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
	}
	for _, password := range []string{"another guess", testAdminPassword} {
		rec := serve(h, adminRequest(http.MethodGet, "198.51.100.7:5001", password)) // same address, other port
		require.Equal(t, http.StatusTooManyRequests, rec.Code, "blocked, even with the right password")
		require.Equal(t, "60", rec.Header().Get("Retry-After"))
	}
	require.Zero(t, reached())

	// Other addresses are not affected.
	require.Equal(t, http.StatusNoContent, serve(h, adminRequest(http.MethodGet, other, testAdminPassword)).Code)

	advance(45 * time.Second)
	require.Equal(t, "15", serve(h, adminRequest(http.MethodGet, attacker, testAdminPassword)).Header().Get("Retry-After"))
	advance(15 * time.Second)
	require.Equal(t, http.StatusNoContent, serve(h, adminRequest(http.MethodGet, attacker, testAdminPassword)).Code, "the window is over")

	// A success forgets earlier failures.
	for range 2 {
		require.Equal(t, http.StatusUnauthorized, serve(h, adminRequest(http.MethodGet, other, "wrong")).Code)
	}
	require.Equal(t, http.StatusNoContent, serve(h, adminRequest(http.MethodGet, other, testAdminPassword)).Code)
	for range 2 {
		require.Equal(t, http.StatusUnauthorized, serve(h, adminRequest(http.MethodGet, other, "wrong")).Code)
	}
	require.Equal(t, http.StatusNoContent, serve(h, adminRequest(http.MethodGet, other, testAdminPassword)).Code)
	require.Equal(t, 4, reached())
}

func TestAuthThrottlePrunesEndedWindows(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	th := newAuthThrottle(3, time.Minute, func() time.Time { return now })
	for i := range authThrottlePrune {
		th.fail(strings.Repeat("x", i%7) + string(rune(i)))
	}
	require.Len(t, th.clients, authThrottlePrune)
	now = now.Add(time.Minute)
	th.fail("new")
	require.Len(t, th.clients, 1)
}
