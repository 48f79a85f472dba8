package main

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"

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

// newRiverUI returns River's web UI (riverqueue.com/riverui) for client,
// behind HTTP Basic authentication with password, and the component that
// runs its background services.
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
	return basicAuth(riverUIUser, password, h), run, nil
}

// basicAuth lets through requests with the given HTTP Basic credentials.
func basicAuth(user, password string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		userOK := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1
		if !ok || !userOK || !passOK {
			w.Header().Set("WWW-Authenticate", `Basic realm="authnotify admin", charset="UTF-8"`)
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusUnauthorized, "the admin pages need the admin user name and ADMIN_PASSWORD"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
