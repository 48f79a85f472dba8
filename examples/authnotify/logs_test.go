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

// Business refusals (a registration again too soon, a wrong password) are
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
	require.Equal(t, http.StatusTooManyRequests, call(t, http.MethodPost, app.base+"/auth/register", "", register, nil))
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

// Every refusal of the auth endpoints (taken address, wrong or unknown
// code, unverified or verified address, wrong password, a lost
// registration race, bad input) is logged below ERROR, and no line but the
// dev mailbox's shows an email address, a code, a token or a password.
func TestRefusalsAreNotErrorsAndLeakNothing(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{"HTTP_ADDR": "127.0.0.1:0"}))
	require.NoError(t, err)
	var logs syncBuffer
	app := startLogging(t, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	post := func(path, token string, body any, want int) {
		t.Helper()
		require.Equal(t, want, call(t, http.MethodPost, app.base+path, token, body, nil), "POST %s", path)
	}

	const ada, grace, password, newPassword = "ada.lovelace@example.com", "grace.hopper@example.com", "correct horse battery", "battery staple horse"
	var reg struct {
		Data struct {
			RegistrationToken string `json:"registrationToken"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, app.base+"/auth/register", "", map[string]string{"email": ada, "password": password}, &reg))
	tok := reg.Data.RegistrationToken
	post("/auth/register", "", map[string]string{"email": ada, "password": password}, http.StatusTooManyRequests)
	code := codePattern.FindStringSubmatch(waitEmail(t, func() []sentEmail {
		var out []sentEmail
		require.Equal(t, http.StatusOK, call(t, http.MethodGet, app.base+"/dev/emails", "", nil, &out))
		return out
	}, ada, "verification code").Text)[1]
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	post("/auth/verify", "", map[string]string{"email": ada, "code": wrong, "registrationToken": tok}, http.StatusBadRequest)
	post("/auth/verify", "", map[string]string{"email": grace, "code": code, "registrationToken": tok}, http.StatusBadRequest)
	post("/auth/login", "", map[string]string{"email": ada, "password": password}, http.StatusForbidden)
	post("/auth/verify", "", map[string]string{"email": ada, "code": code, "registrationToken": tok}, http.StatusOK)
	post("/auth/verify", "", map[string]string{"email": ada, "code": code, "registrationToken": tok}, http.StatusBadRequest)
	post("/auth/register", "", map[string]string{"email": ada, "password": password}, http.StatusConflict)
	post("/auth/resend-verification-code", "", map[string]string{"email": ada}, http.StatusAccepted)
	post("/auth/resend-verification-code", "", map[string]string{"email": grace}, http.StatusAccepted)
	post("/auth/login", "", map[string]string{"email": ada, "password": "wrong " + password}, http.StatusUnauthorized)
	post("/auth/login", "", map[string]string{"email": grace, "password": password}, http.StatusUnauthorized)
	post("/auth/login", "", map[string]string{"email": ada, "password": strings.Repeat("p", 129)}, http.StatusBadRequest)
	post("/auth/register", "", map[string]string{"email": "not an address " + grace, "password": password}, http.StatusBadRequest)
	post("/auth/register", "", map[string]string{"email": "ada@-babbage-engine.com", "password": password}, http.StatusBadRequest)
	post("/auth/login", "", map[string]string{"email": "ada@analytical.babbage.1843", "password": password}, http.StatusBadRequest)
	post("/auth/resend-verification-code", "", map[string]string{"email": "ada@" + strings.Repeat("babbage", 10) + ".com"}, http.StatusBadRequest)
	post("/auth/verify", "", map[string]string{"email": "ada@babbage-.com", "code": code, "registrationToken": tok}, http.StatusBadRequest)
	var login struct {
		Data struct {
			AccessToken string `json:"accessToken"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, app.base+"/auth/login", "", map[string]string{"email": ada, "password": password}, &login))
	token := login.Data.AccessToken
	require.Equal(t, http.StatusBadRequest, call(t, http.MethodPatch, app.base+"/auth/password", token,
		map[string]string{"currentPassword": "wrong " + password, "newPassword": newPassword}, nil))
	require.Equal(t, http.StatusUnauthorized, call(t, http.MethodGet, app.base+"/auth/me", token+"x", nil, nil))

	// A registration race: the same new address, 8 at once; one wins.
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	for range 8 {
		wg.Go(func() {
			statuses <- call(t, http.MethodPost, app.base+"/auth/register", "", map[string]string{"email": grace, "password": newPassword}, nil)
		})
	}
	wg.Wait()
	close(statuses)
	created := 0
	for s := range statuses {
		if s == http.StatusCreated {
			created++
		} else {
			require.Contains(t, []int{http.StatusConflict, http.StatusTooManyRequests}, s) // lost the race, or found the winner within the cooldown
		}
	}
	require.Equal(t, 1, created)

	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !strings.Contains(l, `msg="dev mailbox: email sent"`) {
			lines = append(lines, l)
		}
	}
	out := strings.Join(lines, "\n")
	for _, want := range []string{
		`level=INFO msg="cqrs: command refused" kind=command name=auth.register_user`,
		`level=INFO msg="cqrs: command refused" kind=command name=auth.verify_email`,
		`level=INFO msg="cqrs: query refused" kind=query name=auth.login`,
		`level=INFO msg="cqrs: command refused" kind=command name=auth.change_password`,
	} {
		require.Contains(t, out, want)
	}
	require.NotContains(t, out, `level=ERROR`, "%s", out)
	for _, secret := range []string{"ada.lovelace", "grace.hopper", "example.com", "babbage", "1843", password, newPassword, code, token, token[len(token)-20:]} {
		require.NotContains(t, out, secret, "%s", out)
	}
}
