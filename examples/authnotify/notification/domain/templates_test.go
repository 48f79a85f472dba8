package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func job(kind domain.Kind) domain.EmailJob {
	j := domain.EmailJob{ID: "evt-1", Kind: kind, To: "ada@example.com", UserID: "user-1", OccurredAt: t0}
	if kind.HasCode() {
		j.EncryptedCode = "v1.sealed"
		j.CodeExpiresAt = t0.Add(10 * time.Minute)
	}
	return j
}

func TestEveryKindRenders(t *testing.T) {
	t.Parallel()
	tpl, err := domain.NewTemplates("")
	require.NoError(t, err)

	want := map[domain.Kind]struct {
		subject string
		text    []string
	}{
		domain.KindVerificationCode: {"Your authnotify verification code", []string{"493027", "valid for 10 minutes (until 12:10 UTC)"}},
		domain.KindNewCode:          {"Your new authnotify verification code", []string{"493027", "valid for 10 minutes", "no longer work"}},
		domain.KindWelcome:          {"Welcome to authnotify", []string{"ada@example.com is verified"}},
		domain.KindPasswordChanged:  {"Your authnotify password was changed", []string{"was changed on 1 March 2026, 12:00 UTC", "reset it"}},
		domain.KindPasswordReset:    {"Reset your authnotify password", []string{"493027", "valid for 10 minutes (until 12:10 UTC)", "reset your authnotify password"}},
	}
	require.Len(t, want, len(domain.Kinds()))
	for _, kind := range domain.Kinds() {
		e, err := tpl.Render(job(kind), "493027")
		require.NoError(t, err, kind)
		require.Equal(t, "ada@example.com", e.To)
		require.Equal(t, "evt-1", e.IdempotencyKey, "idempotency key = event ID")
		require.Equal(t, kind, e.Kind)
		require.Equal(t, want[kind].subject, e.Subject, kind)
		for _, s := range want[kind].text {
			require.Contains(t, e.Text, s, kind)
		}
		require.True(t, strings.HasPrefix(e.HTML, "<!DOCTYPE html>"), kind)
		require.Contains(t, e.HTML, "<title>"+want[kind].subject+"</title>", kind)
		require.Contains(t, e.HTML, "ada@example.com", kind)
		require.NotContains(t, e.Text, "<no value>", kind)
		require.NotContains(t, e.HTML, "<no value>", kind)
		if kind.HasCode() {
			require.Contains(t, e.HTML, ">493027<", kind)
		} else {
			require.NotContains(t, e.Text, "493027", "only code kinds show the code")
		}
	}
}

func TestHTMLIsEscaped(t *testing.T) {
	t.Parallel()
	tpl, err := domain.NewTemplates("<b>Acme</b>")
	require.NoError(t, err)
	j := job(domain.KindWelcome)
	j.To = `"<script>"@example.com`
	e, err := tpl.Render(j, "")
	require.NoError(t, err)
	require.NotContains(t, e.HTML, "<script>")
	require.NotContains(t, e.HTML, "<b>Acme</b>")
	require.Contains(t, e.HTML, "&lt;b&gt;Acme&lt;/b&gt;")
	require.Contains(t, e.Text, "<b>Acme</b>", "text is text")
}

func TestRenderWithoutTimes(t *testing.T) {
	t.Parallel()
	tpl, err := domain.NewTemplates("Acme")
	require.NoError(t, err)
	j := job(domain.KindVerificationCode)
	j.OccurredAt = time.Time{}
	e, err := tpl.Render(j, "000111")
	require.NoError(t, err)
	require.Contains(t, e.Text, "It is valid until 12:10 UTC.")
	require.Equal(t, "Your Acme verification code", e.Subject)

	j.CodeExpiresAt = time.Time{}
	e, err = tpl.Render(j, "000111")
	require.NoError(t, err)
	require.Contains(t, e.Text, "000111")
	require.NotContains(t, e.Text, "valid")
}

func TestRenderRejectsBadJobs(t *testing.T) {
	t.Parallel()
	tpl, err := domain.NewTemplates("")
	require.NoError(t, err)
	_, err = tpl.Render(job(domain.KindVerificationCode), "")
	require.ErrorContains(t, err, "no code")

	for name, mutate := range map[string]func(*domain.EmailJob){
		"no id":        func(j *domain.EmailJob) { j.ID = "" },
		"unknown kind": func(j *domain.EmailJob) { j.Kind = "spam" },
		"no recipient": func(j *domain.EmailJob) { j.To = "" },
		"no user":      func(j *domain.EmailJob) { j.UserID = "" },
		"no sealed":    func(j *domain.EmailJob) { j.EncryptedCode = "" },
	} {
		j := job(domain.KindVerificationCode)
		mutate(&j)
		require.Error(t, j.Validate(), name)
		_, err := tpl.Render(j, "123456")
		require.Error(t, err, name)
	}
	require.NoError(t, job(domain.KindWelcome).Validate(), "no code needed")
}

func TestKinds(t *testing.T) {
	t.Parallel()
	for _, k := range domain.Kinds() {
		require.True(t, k.Valid())
	}
	require.False(t, domain.Kind("x").Valid())
	require.True(t, domain.KindNewCode.HasCode())
	require.False(t, domain.KindWelcome.HasCode())
}
