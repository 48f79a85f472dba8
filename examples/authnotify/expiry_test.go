package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
	"github.com/dddkit/dddkit/internal/testinfra"
)

// An account still unverified UNVERIFIED_ACCOUNT_TTL after registration
// is removed by the deadline scheduled at registration: logging in with
// its password answers 401 like an unknown address (403 before), and the
// address can be registered afresh as a new account. In both modes: the
// in-memory outbox embedded; a deadline row in PostgreSQL, relayed
// through Kafka to auth's own consumer in production.
func TestUnverifiedAccountsExpire(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"embedded", "production"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			// Long enough for the 403 right after registering even on a
			// loaded machine; the test waits for the expiry, it does not
			// time it.
			app, emails := startMode(t, mode, func(cfg *config.Config) { cfg.UnverifiedAccountTTL = 8 * time.Second })
			const email, password = "late@example.com", "correct horse battery"
			register := func() string {
				var reg struct {
					Data struct {
						ID string `json:"id"`
					} `json:"data"`
				}
				status := call(t, http.MethodPost, app.base+"/auth/register", "", map[string]string{"email": email, "password": password}, &reg)
				require.Equal(t, http.StatusCreated, status)
				return reg.Data.ID
			}
			login := func() int {
				return call(t, http.MethodPost, app.base+"/auth/login", "", map[string]string{"email": email, "password": password}, nil)
			}

			first := register()
			require.Equal(t, http.StatusForbidden, login(), "unverified, not yet expired")
			waitEmail(t, emails, email, "verification code")

			testinfra.Eventually(t, 90*time.Second, func() bool { return login() == http.StatusUnauthorized },
				"the account expires and a login answers 401")

			second := register()
			require.NotEqual(t, first, second, "the address is free for a new account")
			require.Equal(t, http.StatusForbidden, login(), "the new account is unverified")
		})
	}
}
