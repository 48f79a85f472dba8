package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
)

// Issue 9, password reset, on the embedded default over HTTP: forgot →
// the reset email in the dev mailbox → reset; afterwards the old password
// and the old token answer 401, the new password logs in although the
// account was locked by failed logins (the throttle resets), and the
// "password changed" email is sent. An unknown address gets the same 202
// and no email; five wrong codes kill the code (429).
func TestPasswordReset(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{"HTTP_ADDR": "127.0.0.1:0"}))
	require.NoError(t, err)
	base := start(t, cfg).base
	mailbox := func() []sentEmail {
		var out []sentEmail
		require.Equal(t, http.StatusOK, call(t, http.MethodGet, base+"/dev/emails", "", nil, &out))
		return out
	}
	const email, password, newPassword = "forgetful@example.com", "correct horse battery", "battery staple horse"
	token := verifiedAccount(t, base, mailbox, email, password)

	// Five failed logins lock the account.
	for range 5 {
		require.Equal(t, http.StatusUnauthorized, post(t, base+"/auth/login", map[string]string{"email": email, "password": "wrong password"}).status)
	}
	require.Equal(t, http.StatusTooManyRequests, post(t, base+"/auth/login", map[string]string{"email": email, "password": password}).status)

	forgot := post(t, base+"/auth/password/forgot", map[string]string{"email": strings.ToUpper(email)})
	require.Equal(t, http.StatusAccepted, forgot.status, "%s", forgot.body)
	unknown := post(t, base+"/auth/password/forgot", map[string]string{"email": "nobody@example.com"})
	require.Equal(t, http.StatusAccepted, unknown.status)
	require.Equal(t, string(forgot.body), string(unknown.body), "the same answer whatever the address")
	again := post(t, base+"/auth/password/forgot", map[string]string{"email": email})
	require.Equal(t, http.StatusAccepted, again.status)
	require.Equal(t, string(forgot.body), string(again.body), "within the cooldown: the same answer, no second email")

	mail := waitEmail(t, mailbox, email, "Reset your authnotify password")
	m := codePattern.FindStringSubmatch(mail.Text)
	require.NotNil(t, m, "a 6-digit code in %q", mail.Text)
	wrong := "000000"
	if m[1] == wrong {
		wrong = "111111"
	}

	a := post(t, base+"/auth/password/reset", map[string]string{"email": email, "code": wrong, "newPassword": newPassword})
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Contains(t, string(a.body), "invalid-code", "the same problem as a wrong verification code")
	a = post(t, base+"/auth/password/reset", map[string]string{"email": "nobody@example.com", "code": m[1], "newPassword": newPassword})
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Contains(t, string(a.body), "invalid-code", "an unknown address is a wrong code")
	a = post(t, base+"/auth/password/reset", map[string]string{"email": email, "code": m[1], "newPassword": strings.Repeat("a", 129)})
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Contains(t, string(a.body), "newPassword")

	a = post(t, base+"/auth/password/reset", map[string]string{"email": email, "code": m[1], "newPassword": newPassword})
	require.Equal(t, http.StatusOK, a.status, "%s", a.body)
	waitEmail(t, mailbox, email, "password was changed")

	require.Equal(t, http.StatusUnauthorized, call(t, http.MethodGet, base+"/auth/me", token, nil, nil), "older tokens are revoked")
	require.Equal(t, http.StatusUnauthorized, post(t, base+"/auth/login", map[string]string{"email": email, "password": password}).status, "the old password stopped working")
	var login struct {
		Data struct {
			AccessToken string `json:"accessToken"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, base+"/auth/login", "", map[string]string{"email": email, "password": newPassword}, &login), "the throttle was reset")
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, base+"/auth/me", login.Data.AccessToken, nil, nil))
	a = post(t, base+"/auth/password/reset", map[string]string{"email": email, "code": m[1], "newPassword": "a third password"})
	require.Equal(t, http.StatusBadRequest, a.status, "the code is used up")

	// Five wrong codes kill the code: then even the right one gets 429.
	const other = "careless@example.com"
	verifiedAccount(t, base, mailbox, other, password)
	require.Equal(t, http.StatusAccepted, post(t, base+"/auth/password/forgot", map[string]string{"email": other}).status)
	m = codePattern.FindStringSubmatch(waitEmail(t, mailbox, other, "Reset your").Text)
	require.NotNil(t, m)
	wrong = "000000"
	if m[1] == wrong {
		wrong = "111111"
	}
	for i := range 5 {
		a := post(t, base+"/auth/password/reset", map[string]string{"email": other, "code": wrong, "newPassword": newPassword})
		require.Equal(t, http.StatusBadRequest, a.status, "try %d: %s", i+1, a.body)
	}
	a = post(t, base+"/auth/password/reset", map[string]string{"email": other, "code": m[1], "newPassword": newPassword})
	require.Equal(t, http.StatusTooManyRequests, a.status, "%s", a.body)
	require.Contains(t, string(a.body), "too-many-attempts")
	require.Equal(t, http.StatusOK, post(t, base+"/auth/login", map[string]string{"email": other, "password": password}).status, "the password is unchanged")

	// Give stray emails a chance to show up, then count.
	time.Sleep(300 * time.Millisecond)
	var subjects []string
	for _, e := range mailbox() {
		require.NotEqual(t, "nobody@example.com", e.To, "no email for an unknown address")
		if e.To == email {
			subjects = append(subjects, e.Subject)
		}
	}
	require.Equal(t, []string{
		"Your authnotify verification code", "Welcome to authnotify", "Reset your authnotify password", "Your authnotify password was changed",
	}, subjects, "each email once")
}

// verifiedAccount registers and verifies email over HTTP and returns an
// access token from logging in.
func verifiedAccount(t *testing.T, base string, mailbox func() []sentEmail, email, password string) string {
	t.Helper()
	var reg struct {
		Data struct {
			RegistrationToken string `json:"registrationToken"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, base+"/auth/register", "", map[string]string{"email": email, "password": password}, &reg))
	m := codePattern.FindStringSubmatch(waitEmail(t, mailbox, email, "verification code").Text)
	require.NotNil(t, m)
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, base+"/auth/verify", "", map[string]string{"email": email, "code": m[1], "registrationToken": reg.Data.RegistrationToken}, nil))
	var login struct {
		Data struct {
			AccessToken string `json:"accessToken"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, base+"/auth/login", "", map[string]string{"email": email, "password": password}, &login))
	return login.Data.AccessToken
}
