package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// In production every command runs in one transaction, and a wrong code is
// a refusal that must still be stored: five wrong codes kill the
// verification code there too, so that even the right one then answers
// 429. (Before cqrs.KeepChanges the refusal rolled the failed attempt
// back, and the limit held only in the embedded mode.)
func TestCodeAttemptLimitHoldsInProduction(t *testing.T) {
	t.Parallel()
	resend := newFakeResend(t)
	app := start(t, productionConfig(t, resend.URL))
	const email = "guesser@example.com"
	var reg struct {
		Data struct {
			RegistrationToken string `json:"registrationToken"`
		} `json:"data"`
	}
	require.Equal(t, http.StatusCreated, call(t, http.MethodPost, app.base+"/auth/register", "", map[string]string{"email": email, "password": "correct horse battery"}, &reg))
	m := codePattern.FindStringSubmatch(waitEmail(t, resend.sent, email, "verification code").Text)
	require.NotNil(t, m)
	wrong := "000000"
	if m[1] == wrong {
		wrong = "111111"
	}
	verify := func(code string) int {
		return call(t, http.MethodPost, app.base+"/auth/verify", "", map[string]string{"email": email, "code": code, "registrationToken": reg.Data.RegistrationToken}, nil)
	}
	for i := range 5 {
		require.Equal(t, http.StatusBadRequest, verify(wrong), "wrong code %d", i+1)
	}
	require.Equal(t, http.StatusTooManyRequests, verify(m[1]), "the code is dead after five wrong ones")
}
