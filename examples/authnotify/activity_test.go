package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/internal/testinfra"
)

// GET /auth/me/activity answers the caller's own account activity, oldest
// first, from the read model that a projection of the published events
// keeps: the in-memory bus embedded, Kafka into PostgreSQL in production.
// It is eventually consistent, so the test waits for it.
func TestAccountActivity(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"embedded", "production"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			app, emails := startMode(t, mode, nil)
			token := activityUser(t, app.base, emails, "ada@example.com")
			other := activityUser(t, app.base, emails, "bob@example.com")

			type entry struct {
				Type string    `json:"type"`
				At   time.Time `json:"at"`
			}
			activity := func(token string) []entry {
				var res struct {
					Data []entry `json:"data"`
				}
				require.Equal(t, http.StatusOK, call(t, http.MethodGet, app.base+"/auth/me/activity", token, nil, &res))
				return res.Data
			}
			want := []string{"registered", "verification_failed", "verified"}
			var got []entry
			t.Cleanup(func() { t.Logf("last activity: %+v", got) })
			testinfra.Eventually(t, 60*time.Second, func() bool {
				got = activity(token)
				types := make([]string, len(got))
				for i, e := range got {
					types[i] = e.Type
				}
				return slices.Equal(types, want)
			}, "the activity of the account becomes %v", want)
			for i := 1; i < len(got); i++ {
				require.False(t, got[i].At.Before(got[i-1].At), "oldest first: %+v", got)
			}
			testinfra.Eventually(t, 60*time.Second, func() bool { return len(activity(other)) == 3 },
				"the other account's activity is its own three entries")

			require.Equal(t, http.StatusUnauthorized, call(t, http.MethodGet, app.base+"/auth/me/activity", "", nil, nil))
			require.Equal(t, http.StatusUnauthorized, call(t, http.MethodGet, app.base+"/auth/me/activity", token+"x", nil, nil))
		})
	}
}

// activityUser registers email, types a wrong code once, verifies it and
// logs in; it returns the access token.
func activityUser(t *testing.T, base string, emails func() []sentEmail, email string) string {
	t.Helper()
	const password = "correct horse battery"
	var reg struct {
		Data struct {
			RegistrationToken string `json:"registrationToken"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/auth/register", "", map[string]string{"email": email, "password": password}, &reg))
	m := codePattern.FindStringSubmatch(waitEmail(t, emails, email, "verification code").Text)
	require.NotNil(t, m)
	wrong := "000000"
	if m[1] == wrong {
		wrong = "111111"
	}
	require.Equal(t, http.StatusBadRequest, call(t, http.MethodPost, base+"/auth/verify", "", map[string]string{"email": email, "code": wrong, "registrationToken": reg.Data.RegistrationToken}, nil))
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, base+"/auth/verify", "", map[string]string{"email": email, "code": m[1], "registrationToken": reg.Data.RegistrationToken}, nil))
	var login struct {
		Data struct {
			AccessToken string `json:"accessToken"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, base+"/auth/login", "", map[string]string{"email": email, "password": password}, &login))
	return login.Data.AccessToken
}

// rebuild-activity empties the production read model and resets the
// projection's consumer group; started again, the service rebuilds the
// same activity from the start of the user topic. It refuses while the
// service runs.
func TestRebuildActivity(t *testing.T) {
	t.Parallel()
	resend := newFakeResend(t)
	cfg := productionConfig(t, resend.URL)
	app := start(t, cfg)
	token := activityUser(t, app.base, resend.sent, "ada@example.com")
	list := func(base string) []string {
		var res struct {
			Data []struct {
				Type string `json:"type"`
			} `json:"data"`
		}
		require.Equal(t, http.StatusOK, call(t, http.MethodGet, base+"/auth/me/activity", token, nil, &res))
		types := make([]string, len(res.Data))
		for i, e := range res.Data {
			types[i] = e.Type
		}
		return types
	}
	want := []string{"registered", "verification_failed", "verified"}
	testinfra.Eventually(t, 60*time.Second, func() bool { return slices.Equal(list(app.base), want) }, "activity %v", want)

	var out strings.Builder
	err := rebuild(t.Context(), cfg, &out)
	require.ErrorContains(t, err, "stop every replica of the service first")

	app.stop()
	require.NoError(t, rebuild(t.Context(), cfg, &out))
	require.Contains(t, out.String(), "is empty")
	pool, err := pgxpool.New(t.Context(), cfg.DatabaseURL)
	require.NoError(t, err)
	defer pool.Close()
	var rows int
	require.NoError(t, pool.QueryRow(t.Context(), "SELECT count(*) FROM "+adapters.ActivityTable).Scan(&rows))
	require.Zero(t, rows, "the read model is empty until the service runs again")

	again := start(t, cfg)
	testinfra.Eventually(t, 60*time.Second, func() bool { return slices.Equal(list(again.base), want) },
		"the rebuilt activity equals the first build, %v", want)
}

// rebuild-activity needs the production configuration.
func TestRebuildActivityNeedsProduction(t *testing.T) {
	t.Parallel()
	var stdout, stderr strings.Builder
	require.Equal(t, exitConfig, realMain([]string{"rebuild-activity"}, env(nil), &stdout, &stderr))
	require.Contains(t, stderr.String(), "needs the production configuration")
	require.Equal(t, exitConfig, realMain([]string{"rebuild-activity", "now"}, env(nil), &stdout, &stderr))
}
