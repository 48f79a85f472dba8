package main

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/dddkit/dddkit/examples/authnotify/internal/httpx"
)

// riverUIPrefix is where River's web UI is mounted in production mode.
const riverUIPrefix = "/admin/jobs"

// riverUIUser is the HTTP Basic user name of the UI; the password is
// ADMIN_PASSWORD.
const riverUIUser = "admin"

// Failed Basic-auth attempts allowed per client address within
// adminFailureWindow (counted from the first failure); beyond them the
// address gets 429 with Retry-After until the window ends, right password
// or not.
const (
	adminMaxFailures   = 10
	adminFailureWindow = 5 * time.Minute
)

// newRiverUI returns River's web UI (riverqueue.com/riverui) for client,
// behind adminGuard, and the component that runs its background services.
func newRiverUI(client *river.Client[pgx.Tx], password string, log *slog.Logger) (http.Handler, component, error) {
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints:                riverui.NewEndpoints(client, nil),
		JobListHideArgsByDefault: true,
		Logger:                   log,
		Prefix:                   riverUIPrefix,
	})
	if err != nil {
		return nil, component{}, err
	}
	run := component{name: "River UI", run: func(ctx context.Context) error {
		if err := h.Start(ctx); err != nil {
			return err
		}
		<-ctx.Done() // its services stop with ctx
		return nil
	}}
	return adminGuard(riverUIUser, password, newAuthThrottle(adminMaxFailures, adminFailureWindow, time.Now), h), run, nil
}

// adminGuard protects the admin pages:
//
//   - Cross-site state-changing requests are refused with 403, before the
//     credentials are looked at: a browser sends cached Basic credentials
//     along with a form or fetch from another site, so Basic auth alone is
//     no CSRF defence. http.CrossOriginProtection checks Sec-Fetch-Site
//     (every browser since 2023), or else that Origin's host is the
//     request's Host, on every method but GET, HEAD and OPTIONS (which
//     River's UI uses only to read). Requests with neither header (curl,
//     scripts) are not from a browser and pass.
//   - Failed Basic-auth attempts are counted per client address (the TCP
//     peer: behind a reverse proxy, every client shares the proxy's
//     budget), see [authThrottle].
//   - Then the HTTP Basic credentials are checked.
func adminGuard(user, password string, throttle *authThrottle, next http.Handler) http.Handler {
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteProblem(w, httpx.NewProblem(http.StatusForbidden, "cross-site requests to the admin pages are refused"))
	}))
	return csrf.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := clientAddr(r)
		if wait := throttle.blocked(client); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusTooManyRequests, "too many failed log-ins from this address; try again later"))
			return
		}
		u, p, ok := r.BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1
		if !ok || !userOK || !passOK {
			if ok { // a request without credentials is the browser asking for them
				throttle.fail(client)
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="authnotify admin", charset="UTF-8"`)
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusUnauthorized, "the admin pages need the admin user name and ADMIN_PASSWORD"))
			return
		}
		throttle.succeed(client)
		next.ServeHTTP(w, r)
	}))
}

func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// authThrottle counts failed log-ins per client address in fixed windows
// that start at an address's first failure: after max failures the
// address is blocked until its window ends. Entries whose window has ended
// are dropped as the table grows, so it holds at most the addresses that
// failed within one window.
type authThrottle struct {
	max    int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	clients map[string]*authFailures
}

type authFailures struct {
	count int
	start time.Time
}

// authThrottlePrune is the table size at which ended windows are dropped.
const authThrottlePrune = 1024

func newAuthThrottle(maxFailures int, window time.Duration, now func() time.Time) *authThrottle {
	return &authThrottle{max: maxFailures, window: window, now: now, clients: map[string]*authFailures{}}
}

// blocked returns how long client must still wait, or 0.
func (t *authThrottle) blocked(client string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.clients[client]
	if f == nil || f.count < t.max {
		return 0
	}
	if wait := f.start.Add(t.window).Sub(t.now()); wait > 0 {
		return wait
	}
	delete(t.clients, client)
	return 0
}

func (t *authThrottle) fail(client string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.clients[client]
	if f == nil || !now.Before(f.start.Add(t.window)) {
		if len(t.clients) >= authThrottlePrune {
			for c, g := range t.clients {
				if !now.Before(g.start.Add(t.window)) {
					delete(t.clients, c)
				}
			}
		}
		f = &authFailures{start: now}
		t.clients[client] = f
	}
	f.count++
}

// succeed forgets client's failures.
func (t *authThrottle) succeed(client string) {
	t.mu.Lock()
	delete(t.clients, client)
	t.mu.Unlock()
}
