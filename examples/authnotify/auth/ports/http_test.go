package ports_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/auth/ports"
	"github.com/dddkit/dddkit/examples/authnotify/internal/authtest"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
	"github.com/dddkit/dddkit/valueobject"
)

type clock = dddkittest.Clock

type bundle struct {
	handler http.Handler
	repo    *adapters.Memory
	sink    *authtest.Events
	clock   *clock
	cipher  *fieldcrypt.Cipher
	tokens  *app.Tokens
	hasher  *countingHasher
	// activity is the read model the Activity query reads; the tests
	// fill it as the projection would.
	activity *adapters.MemoryActivity
}

// countingHasher counts the hashes computed and checked.
type countingHasher struct {
	domain.PasswordHasher
	n atomic.Int64
}

func (h *countingHasher) Hash(pw valueobject.Password) (string, error) {
	h.n.Add(1)
	return h.PasswordHasher.Hash(pw)
}

func (h *countingHasher) Verify(hash, plain string) error {
	h.n.Add(1)
	return h.PasswordHasher.Verify(hash, plain)
}

func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{clock: dddkittest.NewClock(time.Time{}), sink: &authtest.Events{}, activity: adapters.NewMemoryActivity()}
	var err error
	b.cipher, err = fieldcrypt.New(bytes.Repeat([]byte{9}, fieldcrypt.KeySize))
	require.NoError(t, err)
	factory, err := domain.NewFactory(b.cipher, b.cipher.DeriveKey("otp"), &domain.FactoryConfig{Clock: b.clock.Now})
	require.NoError(t, err)
	b.repo, err = adapters.NewMemory(factory, b.sink)
	require.NoError(t, err)
	b.tokens, err = app.NewTokens([]app.Key{{Secret: []byte("test secret 5 0123456789abcdefghijklmnop")}}, &app.TokenConfig{Clock: b.clock.Now})
	require.NoError(t, err)
	b.hasher = &countingHasher{PasswordHasher: authtest.Hasher(t)}
	hasher := b.hasher

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus := authtest.Bus(t, logger)
	require.NoError(t, app.Register(bus, app.Deps{Users: b.repo, Factory: factory, Tokens: b.tokens, Hasher: hasher, Logger: logger, Activity: b.activity}))
	require.NoError(t, bus.Validate())

	h, err := ports.NewHTTP(bus, &ports.Config{Logger: logger})
	require.NoError(t, err)
	b.handler = h.Handler()
	return b
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (b *bundle) do(t *testing.T, method, path, contentType, body, token string) response {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	b.handler.ServeHTTP(w, r)
	res := response{status: w.Code, header: w.Header(), raw: w.Body.String()}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &res.body), "every answer is JSON: %q", w.Body.String())
	return res
}

func (b *bundle) post(t *testing.T, path, body string) response {
	t.Helper()
	return b.do(t, http.MethodPost, path, "application/json", body, "")
}

// lastCode opens the code of the latest event, as the notification module does.
func (b *bundle) lastCode(t *testing.T) string {
	t.Helper()
	return authtest.OpenCode(t, b.cipher, b.sink.Last(t))
}

// register registers email with password and returns the registration
// token.
func (b *bundle) register(t *testing.T, email, password string) string {
	t.Helper()
	res := b.post(t, "/auth/register", `{"email":"`+email+`","password":"`+password+`"}`)
	require.Equal(t, 201, res.status, res.raw)
	tok := res.body["data"].(map[string]any)["registrationToken"].(string)
	require.NotEmpty(t, tok)
	return tok
}

// verify posts to /auth/verify.
func (b *bundle) verify(t *testing.T, email, code, token string) response {
	t.Helper()
	return b.post(t, "/auth/verify", `{"email":"`+email+`","code":"`+code+`","registrationToken":"`+token+`"}`)
}

func (b *bundle) verifiedUser(t *testing.T, email string) string {
	t.Helper()
	tok := b.register(t, email, "correct horse")
	res := b.verify(t, email, b.lastCode(t), tok)
	require.Equal(t, 200, res.status, res.raw)
	res = b.post(t, "/auth/login", `{"email":"`+email+`","password":"correct horse"}`)
	require.Equal(t, 200, res.status, res.raw)
	return res.body["data"].(map[string]any)["accessToken"].(string)
}

func requireProblem(t *testing.T, res response, status int, typeSuffix string) {
	t.Helper()
	require.Equal(t, status, res.status, res.raw)
	require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
	require.EqualValues(t, status, res.body["status"])
	require.NotEmpty(t, res.body["title"])
	require.NotEmpty(t, res.body["detail"])
	require.True(t, strings.HasSuffix(res.body["type"].(string), typeSuffix), "type %v, want suffix %s", res.body["type"], typeSuffix)
}

func fieldsOf(res response) []string {
	var out []string
	errs, _ := res.body["errors"].([]any)
	for _, e := range errs {
		m := e.(map[string]any)
		out = append(out, m["field"].(string))
		if m["message"] == "" {
			panic("empty message")
		}
	}
	return out
}

func TestHappyPath(t *testing.T) {
	t.Parallel()
	b := setup(t)

	res := b.post(t, "/auth/register", `{"email":"Ada@Example.com","password":"correct horse"}`)
	require.Equal(t, 201, res.status, res.raw)
	require.Equal(t, "application/json", res.header.Get("Content-Type"))
	require.Equal(t, "no-store", res.header.Get("Cache-Control"))
	require.NotEmpty(t, res.header.Get("X-Request-Id"))
	require.NotEmpty(t, res.body["message"])
	data := res.body["data"].(map[string]any)
	require.Equal(t, "ada@example.com", data["email"])
	userID := data["id"].(string)
	regToken := data["registrationToken"].(string)

	res = b.post(t, "/auth/login", `{"email":"ada@example.com","password":"correct horse"}`)
	requireProblem(t, res, 403, "#not-verified")

	res = b.verify(t, "ada@example.com", b.lastCode(t), regToken)
	require.Equal(t, 200, res.status, res.raw)
	require.Equal(t, map[string]any{"message": res.body["message"], "data": nil}, res.body)

	res = b.post(t, "/auth/login", `{"email":"ada@example.com","password":"correct horse"}`)
	require.Equal(t, 200, res.status, res.raw)
	data = res.body["data"].(map[string]any)
	require.Equal(t, "Bearer", data["tokenType"])
	require.EqualValues(t, 900, data["expiresIn"])
	token := data["accessToken"].(string)

	res = b.do(t, http.MethodGet, "/auth/me", "", "", token)
	require.Equal(t, 200, res.status, res.raw)
	require.Equal(t, map[string]any{
		"id": userID, "email": "ada@example.com", "status": "verified",
		"createdAt": "2026-03-01T12:00:00Z", "verifiedAt": "2026-03-01T12:00:00Z",
	}, res.body["data"])

	res = b.do(t, http.MethodPatch, "/auth/password", "application/json", `{"currentPassword":"correct horse","newPassword":"battery staple"}`, token)
	require.Equal(t, 200, res.status, res.raw)
	res = b.post(t, "/auth/login", `{"email":"ada@example.com","password":"correct horse"}`)
	requireProblem(t, res, 401, "#invalid-credentials")
	res = b.post(t, "/auth/login", `{"email":"ada@example.com","password":"battery staple"}`)
	require.Equal(t, 200, res.status, res.raw)

	require.Equal(t, []string{"auth.user_registered", "auth.user_verified", "auth.password_changed"}, b.sink.Names())
}

func TestCorrelationIDReachesTheEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := httptest.NewRequest(http.MethodPost, "/auth/register", strings.NewReader(`{"email":"ada@example.com","password":"correct horse"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Request-Id", "req-42")
	w := httptest.NewRecorder()
	b.handler.ServeHTTP(w, r)
	require.Equal(t, 201, w.Code)
	require.Equal(t, "req-42", b.sink.All()[0].Metadata.CorrelationID)
}

// The bad-input table: every case is a 4xx problem+json and saves nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token := b.verifiedUser(t, "ada@example.com")
	users, events := b.repo.Len(), b.sink.Len()

	big := `{"email":"ada@example.com","password":"` + strings.Repeat("x", 1<<20) + `"}`
	for _, tc := range []struct {
		name                      string
		method, path, ctype, body string
		auth                      bool
		status                    int
		typ                       string
		fields                    []string
	}{
		{"malformed JSON", "POST", "/auth/register", "application/json", `{"email":`, false, 400, "about:blank", nil},
		{"not JSON at all", "POST", "/auth/register", "application/json", `email=ada`, false, 400, "about:blank", nil},
		{"empty body", "POST", "/auth/register", "application/json", ``, false, 400, "about:blank", nil},
		{"JSON array", "POST", "/auth/register", "application/json", `[{"email":"ada@example.com"}]`, false, 400, "about:blank", nil},
		{"JSON null", "POST", "/auth/login", "application/json", `null`, false, 400, "about:blank", nil},
		{"two objects", "POST", "/auth/login", "application/json", `{"email":"ada@example.com","password":"correct horse"}{}`, false, 400, "about:blank", nil},
		{"unknown field", "POST", "/auth/register", "application/json", `{"email":"bob@example.com","password":"correct horse","admin":true}`, false, 400, "#validation", []string{"admin"}},
		{"field name in other case", "POST", "/auth/register", "application/json", `{"Email":"bob@example.com","password":"correct horse"}`, false, 400, "#validation", []string{"Email"}},
		{"missing fields", "POST", "/auth/register", "application/json", `{}`, false, 400, "#validation", []string{"email", "password"}},
		{"missing password", "POST", "/auth/login", "application/json", `{"email":"ada@example.com"}`, false, 400, "#validation", []string{"password"}},
		{"null field", "POST", "/auth/register", "application/json", `{"email":null,"password":"correct horse"}`, false, 400, "#validation", []string{"email"}},
		{"missing code", "POST", "/auth/verify", "application/json", `{"email":"ada@example.com"}`, false, 400, "#validation", []string{"code", "registrationToken"}},
		{"missing email", "POST", "/auth/resend-verification-code", "application/json", `{}`, false, 400, "#validation", []string{"email"}},
		{"missing new password", "PATCH", "/auth/password", "application/json", `{"currentPassword":"correct horse"}`, true, 400, "#validation", []string{"newPassword"}},
		{"email is a number", "POST", "/auth/register", "application/json", `{"email":42,"password":"correct horse"}`, false, 400, "#validation", []string{"email"}},
		{"password is an object", "POST", "/auth/login", "application/json", `{"email":"ada@example.com","password":{}}`, false, 400, "#validation", []string{"password"}},
		{"code is a number", "POST", "/auth/verify", "application/json", `{"email":"ada@example.com","code":123456,"registrationToken":"t"}`, false, 400, "#validation", []string{"code"}},
		{"code is a bool", "PATCH", "/auth/password", "application/json", `{"currentPassword":true,"newPassword":"battery staple"}`, true, 400, "#validation", []string{"currentPassword"}},
		{"oversized body", "POST", "/auth/register", "application/json", big, false, 413, "about:blank", nil},
		{"no content type", "POST", "/auth/register", "", `{"email":"bob@example.com","password":"correct horse"}`, false, 415, "about:blank", nil},
		{"form content type", "POST", "/auth/login", "application/x-www-form-urlencoded", `email=ada%40example.com`, false, 415, "about:blank", nil},
		{"text content type", "PATCH", "/auth/password", "text/plain", `{}`, true, 415, "about:blank", nil},
		{"invalid email", "POST", "/auth/register", "application/json", `{"email":"not-an-email","password":"correct horse"}`, false, 400, "#validation", []string{"email"}},
		{"empty email", "POST", "/auth/register", "application/json", `{"email":"","password":"correct horse"}`, false, 400, "#validation", []string{"email"}},
		{"invalid email at login", "POST", "/auth/login", "application/json", `{"email":"ada@","password":"correct horse"}`, false, 400, "#validation", []string{"email"}},
		{"invalid email at verify", "POST", "/auth/verify", "application/json", `{"email":"ada","code":"123456","registrationToken":"t"}`, false, 400, "#validation", []string{"email"}},
		{"invalid email at resend", "POST", "/auth/resend-verification-code", "application/json", `{"email":"@example.com"}`, false, 400, "#validation", []string{"email"}},
		{"weak password", "POST", "/auth/register", "application/json", `{"email":"bob@example.com","password":"password"}`, false, 400, "#validation", []string{"password"}},
		{"short password", "POST", "/auth/register", "application/json", `{"email":"bob@example.com","password":"short"}`, false, 400, "#validation", []string{"password"}},
		{"password is the email", "POST", "/auth/register", "application/json", `{"email":"bob@example.com","password":"bob@example.com"}`, false, 400, "#validation", []string{"password"}},
		{"huge password", "POST", "/auth/register", "application/json", `{"email":"bob@example.com","password":"` + strings.Repeat("x", 100_000) + `"}`, false, 400, "#validation", []string{"password"}},
		{"weak new password", "PATCH", "/auth/password", "application/json", `{"currentPassword":"correct horse","newPassword":"12345678"}`, true, 400, "#validation", []string{"newPassword"}},
		{"new password is the email", "PATCH", "/auth/password", "application/json", `{"currentPassword":"correct horse","newPassword":"ada@example.com"}`, true, 400, "#validation", []string{"newPassword"}},
		{"same new password", "PATCH", "/auth/password", "application/json", `{"currentPassword":"correct horse","newPassword":"correct horse"}`, true, 400, "#validation", []string{"newPassword"}},
		{"wrong current password", "PATCH", "/auth/password", "application/json", `{"currentPassword":"wrong horse","newPassword":"battery staple"}`, true, 400, "#validation", []string{"currentPassword"}},
		{"code not digits", "POST", "/auth/verify", "application/json", `{"email":"ada@example.com","code":"abcdef","registrationToken":"t"}`, false, 400, "#validation", []string{"code"}},
		{"code too long", "POST", "/auth/verify", "application/json", `{"email":"ada@example.com","code":"1234567","registrationToken":"t"}`, false, 400, "#validation", []string{"code"}},
		{"both fields bad", "POST", "/auth/register", "application/json", `{"email":"x","password":"x"}`, false, 400, "#validation", []string{"email", "password"}},
	} {
		token := map[bool]string{true: token}[tc.auth]
		res := b.do(t, tc.method, tc.path, tc.ctype, tc.body, token)
		require.Equal(t, tc.status, res.status, "%s: %s", tc.name, res.raw)
		require.Less(t, res.status, 500, tc.name)
		require.Equal(t, "application/problem+json", res.header.Get("Content-Type"), tc.name)
		require.EqualValues(t, tc.status, res.body["status"], tc.name)
		require.NotEmpty(t, res.body["title"], tc.name)
		require.NotEmpty(t, res.body["detail"], tc.name)
		require.True(t, strings.HasSuffix(res.body["type"].(string), tc.typ), "%s: type %v", tc.name, res.body["type"])
		require.Equal(t, tc.fields, fieldsOf(res), tc.name)
		require.Equal(t, users, b.repo.Len(), "%s: no user saved", tc.name)
		require.Equal(t, events, b.sink.Len(), "%s: no event saved", tc.name)
	}
	// The password is unchanged after all that.
	res := b.post(t, "/auth/login", `{"email":"ada@example.com","password":"correct horse"}`)
	require.Equal(t, 200, res.status, res.raw)
}

// Every endpoint that takes a password refuses one over 128 characters
// with the register endpoint's 400 validation problem, before any argon2
// work; duplicate keys and invalid UTF-8 are refused before it too.
func TestOverlongPasswordsAndAmbiguousJSONAreRefusedBeforeHashing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token := b.verifiedUser(t, "ada@example.com")
	users, events := b.repo.Len(), b.sink.Len()

	long := strings.Repeat("x", 129)
	huge := strings.Repeat("x", 900_000)  // under the 1 MiB body limit
	wide := strings.Repeat("ä", 129)      // 129 characters, 258 bytes
	under := strings.Repeat("x", 4*128-1) // few bytes per 4 but more than 128 characters
	for _, tc := range []struct {
		name, method, path, body string
		auth                     bool
		status                   int
		typ                      string
		fields                   []string
	}{
		{"register, 129 chars", "POST", "/auth/register", `{"email":"bob@example.com","password":"` + long + `"}`, false, 400, "#validation", []string{"password"}},
		{"login, 129 chars", "POST", "/auth/login", `{"email":"ada@example.com","password":"` + long + `"}`, false, 400, "#validation", []string{"password"}},
		{"login, 129 wide chars", "POST", "/auth/login", `{"email":"ada@example.com","password":"` + wide + `"}`, false, 400, "#validation", []string{"password"}},
		{"login, 511 chars", "POST", "/auth/login", `{"email":"ada@example.com","password":"` + under + `"}`, false, 400, "#validation", []string{"password"}},
		{"login, 900 kB", "POST", "/auth/login", `{"email":"ada@example.com","password":"` + huge + `"}`, false, 400, "#validation", []string{"password"}},
		{"login, unknown email, 900 kB", "POST", "/auth/login", `{"email":"nobody@example.com","password":"` + huge + `"}`, false, 400, "#validation", []string{"password"}},
		{"change, current 129 chars", "PATCH", "/auth/password", `{"currentPassword":"` + long + `","newPassword":"battery staple"}`, true, 400, "#validation", []string{"currentPassword"}},
		{"change, current 900 kB", "PATCH", "/auth/password", `{"currentPassword":"` + huge + `","newPassword":"battery staple"}`, true, 400, "#validation", []string{"currentPassword"}},
		{"change, new 129 chars", "PATCH", "/auth/password", `{"currentPassword":"correct horse","newPassword":"` + long + `"}`, true, 400, "#validation", []string{"newPassword"}},
		{"duplicate email", "POST", "/auth/login", `{"email":"bob@example.com","email":"ada@example.com","password":"correct horse"}`, false, 400, "#validation", []string{"email"}},
		{"duplicate password", "POST", "/auth/login", `{"email":"ada@example.com","password":"wrong horse","password":"correct horse"}`, false, 400, "#validation", []string{"password"}},
		{"duplicate at register", "POST", "/auth/register", `{"email":"bob@example.com","password":"correct horse","password":"battery staple"}`, false, 400, "#validation", []string{"password"}},
		{"duplicate new password", "PATCH", "/auth/password", `{"currentPassword":"correct horse","newPassword":"battery staple","newPassword":"other staple"}`, true, 400, "#validation", []string{"newPassword"}},
		{"invalid UTF-8 password", "POST", "/auth/login", "{\"email\":\"ada@example.com\",\"password\":\"correct horse\xff\"}", false, 400, "about:blank", nil},
		{"lone surrogate password", "POST", "/auth/login", `{"email":"ada@example.com","password":"correct horse\udfff"}`, false, 400, "about:blank", nil},
		{"invalid UTF-8 at register", "POST", "/auth/register", "{\"email\":\"bob@example.com\",\"password\":\"\xfe\xfecorrect horse\"}", false, 400, "about:blank", nil},
	} {
		before := b.hasher.n.Load()
		res := b.do(t, tc.method, tc.path, "application/json", tc.body, map[bool]string{true: token}[tc.auth])
		requireProblem(t, res, tc.status, tc.typ)
		require.Equal(t, tc.fields, fieldsOf(res), tc.name)
		require.Equal(t, before, b.hasher.n.Load(), "%s: no password was hashed or checked", tc.name)
		require.Equal(t, users, b.repo.Len(), "%s: no user saved", tc.name)
		require.Equal(t, events, b.sink.Len(), "%s: no event saved", tc.name)
	}

	// The refusals counted for nothing: the password still works, and a
	// 128-character one is fine.
	res := b.post(t, "/auth/login", `{"email":"ada@example.com","password":"correct horse"}`)
	require.Equal(t, 200, res.status, res.raw)
	res = b.post(t, "/auth/login", `{"email":"ada@example.com","password":"`+long[1:]+`"}`)
	requireProblem(t, res, 401, "#invalid-credentials")
}

func TestBadTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	token := b.verifiedUser(t, "ada@example.com")
	ghost, err := b.tokens.Issue(valueobject.NewID().String(), 0)
	require.NoError(t, err)
	notAnID, err := b.tokens.Issue("not-a-uuid", 0)
	require.NoError(t, err)
	other, err := app.NewTokens([]app.Key{{Secret: []byte("test secret 6 0123456789abcdefghijklmnop")}}, &app.TokenConfig{Clock: b.clock.Now})
	require.NoError(t, err)
	foreign, err := other.Issue("x", 0)
	require.NoError(t, err)
	events := b.sink.Len()

	for name, header := range map[string]string{
		"no header":            "",
		"no scheme":            token,
		"basic scheme":         "Basic YWRhOnB3",
		"empty bearer":         "Bearer ",
		"garbage":              "Bearer garbage",
		"tampered":             "Bearer " + token[:len(token)-2] + "xx",
		"other secret":         "Bearer " + foreign.Token,
		"user does not exist":  "Bearer " + ghost.Token,
		"subject is not an ID": "Bearer " + notAnID.Token,
	} {
		for _, route := range []struct{ method, path, body string }{
			{http.MethodGet, "/auth/me", ""},
			{http.MethodPatch, "/auth/password", `{"currentPassword":"correct horse","newPassword":"battery staple"}`},
		} {
			r := httptest.NewRequest(route.method, route.path, strings.NewReader(route.body))
			r.Header.Set("Content-Type", "application/json")
			if header != "" {
				r.Header.Set("Authorization", header)
			}
			w := httptest.NewRecorder()
			b.handler.ServeHTTP(w, r)
			require.Equal(t, 401, w.Code, "%s %s: %s", name, route.path, w.Body.String())
			require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"), name)
			require.Contains(t, w.Header().Get("WWW-Authenticate"), "Bearer", name)
		}
	}

	b.clock.Advance(15 * time.Minute)
	res := b.do(t, http.MethodGet, "/auth/me", "", "", token)
	requireProblem(t, res, 401, "#invalid-token")
	require.Contains(t, res.body["detail"], "expired")
	require.Contains(t, res.header.Get("WWW-Authenticate"), `error="invalid_token"`)

	require.Equal(t, events, b.sink.Len(), "nothing saved")
}

// Tokens die with the password: a token kept from before a password
// change answers 401 on every authenticated endpoint, change-password
// included; a token from the next login works.
func TestPasswordChangeRevokesOlderTokens(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := b.verifiedUser(t, "ada@example.com")
	b.clock.Advance(time.Second)
	res := b.do(t, http.MethodPatch, "/auth/password", "application/json", `{"currentPassword":"correct horse","newPassword":"battery staple"}`, old)
	require.Equal(t, 200, res.status, res.raw)

	events := b.sink.Len()
	res = b.do(t, http.MethodGet, "/auth/me", "", "", old)
	requireProblem(t, res, 401, "#invalid-token")
	require.Contains(t, res.body["detail"], "password was changed")
	require.Contains(t, res.header.Get("WWW-Authenticate"), `error="invalid_token"`)
	res = b.do(t, http.MethodPatch, "/auth/password", "application/json", `{"currentPassword":"battery staple","newPassword":"correct horse"}`, old)
	requireProblem(t, res, 401, "#invalid-token")
	require.Equal(t, events, b.sink.Len(), "the revoked token changed nothing")

	res = b.post(t, "/auth/login", `{"email":"ada@example.com","password":"battery staple"}`)
	require.Equal(t, 200, res.status, res.raw)
	fresh := res.body["data"].(map[string]any)["accessToken"].(string)
	res = b.do(t, http.MethodGet, "/auth/me", "", "", fresh)
	require.Equal(t, 200, res.status, res.raw)
}

func TestBusinessRuleErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tok := b.register(t, "ada@example.com", "correct horse")
	code := b.lastCode(t)

	res := b.post(t, "/auth/register", `{"email":"ADA@example.com","password":"other horse"}`)
	requireProblem(t, res, 429, "#too-soon")
	require.Equal(t, "60", res.header.Get("Retry-After"))
	require.Equal(t, 1, b.repo.Len())

	// Unknown email and wrong password: the same 401.
	wrong := b.post(t, "/auth/login", `{"email":"ada@example.com","password":"wrong horse"}`)
	unknown := b.post(t, "/auth/login", `{"email":"nobody@example.com","password":"wrong horse"}`)
	requireProblem(t, wrong, 401, "#invalid-credentials")
	require.Equal(t, wrong.body, unknown.body)
	require.Equal(t, wrong.status, unknown.status)

	for range domain.MaxCodeAttempts {
		requireProblem(t, b.verify(t, "ada@example.com", "000000", tok), 400, "#invalid-code")
	}
	requireProblem(t, b.verify(t, "ada@example.com", code, tok), 429, "#too-many-attempts")

	// A new code after 60 s; too early is still 202 but sends nothing.
	n := b.sink.Len()
	res = b.post(t, "/auth/resend-verification-code", `{"email":"ada@example.com"}`)
	require.Equal(t, 202, res.status)
	require.Equal(t, n, b.sink.Len(), "throttled: nothing sent")
	b.clock.Advance(time.Minute)
	res = b.post(t, "/auth/resend-verification-code", `{"email":"ada@example.com"}`)
	require.Equal(t, 202, res.status)
	require.Equal(t, "auth.user_otp_requested", b.sink.Names()[b.sink.Len()-1])
	newCode := b.lastCode(t)

	res = b.post(t, "/auth/resend-verification-code", `{"email":"nobody@example.com"}`)
	require.Equal(t, 202, res.status, "no account enumeration")

	b.clock.Advance(domain.CodeTTL)
	res = b.verify(t, "ada@example.com", newCode, tok)
	requireProblem(t, res, 400, "#code-expired")
	require.Contains(t, res.body["detail"], "expired")

	b.clock.Advance(time.Minute)
	require.Equal(t, 202, b.post(t, "/auth/resend-verification-code", `{"email":"ada@example.com"}`).status)
	require.Equal(t, 200, b.verify(t, "ada@example.com", b.lastCode(t), tok).status)
	res = b.post(t, "/auth/resend-verification-code", `{"email":"ada@example.com"}`)
	require.Equal(t, 202, res.status, "verified: still 202")

	b.clock.Advance(time.Minute)
	res = b.post(t, "/auth/register", `{"email":"ADA@example.com","password":"other horse"}`)
	requireProblem(t, res, 409, "#email-taken")
	require.Contains(t, res.body["detail"], "reset the password")
}

// Issue 9, row 1: an attacker registers the victim's address with their
// own password; the victim registers again and verifies with the code
// mailed to them and their own token. The attacker's token and password
// no longer work; the victim's do.
func TestRegisteringAgainDefeatsASquatter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	attackerToken := b.register(t, "victim@example.com", "attacker horse")
	attackerCode := b.lastCode(t) // the attacker cannot read it, but even so

	b.clock.Advance(domain.CodeResendInterval)
	victimToken := b.register(t, "Victim@example.com", "victim horse")
	victimCode := b.lastCode(t)
	require.NotEqual(t, attackerToken, victimToken)
	require.Equal(t, 1, b.repo.Len())
	require.Equal(t, []string{"auth.user_registered", "auth.user_otp_requested"}, b.sink.Names(), "a new code is mailed")

	requireProblem(t, b.verify(t, "victim@example.com", attackerCode, attackerToken), 400, "#invalid-code")
	requireProblem(t, b.verify(t, "victim@example.com", victimCode, attackerToken), 400, "#invalid-code")
	requireProblem(t, b.verify(t, "victim@example.com", attackerCode, victimToken), 400, "#invalid-code")
	res := b.verify(t, "victim@example.com", victimCode, victimToken)
	require.Equal(t, 200, res.status, res.raw)

	requireProblem(t, b.post(t, "/auth/login", `{"email":"victim@example.com","password":"attacker horse"}`), 401, "#invalid-credentials")
	res = b.post(t, "/auth/login", `{"email":"victim@example.com","password":"victim horse"}`)
	require.Equal(t, 200, res.status, res.raw)
}

// Issue 9, row 3: /auth/verify answers a verified, an unverified and an
// unknown address alike, and a wrong token like a wrong code.
func TestVerifyDoesNotEnumerateAccounts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.verifiedUser(t, "ada@example.com")
	tok := b.register(t, "grace@example.com", "correct horse")
	code := b.lastCode(t)

	answers := []response{
		b.verify(t, "ada@example.com", "000000", tok),
		b.verify(t, "ada@example.com", code, tok),
		b.verify(t, "grace@example.com", "000000", tok),
		b.verify(t, "grace@example.com", code, "not-the-token"),
		b.verify(t, "nobody@example.com", code, tok),
	}
	for i, res := range answers {
		requireProblem(t, res, 400, "#invalid-code")
		require.Equal(t, answers[0].body, res.body, "answer %d", i)
	}
	// The failures counted toward grace's 5 tries.
	for range domain.MaxCodeAttempts - 2 {
		requireProblem(t, b.verify(t, "grace@example.com", "000000", tok), 400, "#invalid-code")
	}
	requireProblem(t, b.verify(t, "grace@example.com", code, tok), 429, "#too-many-attempts")
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireProblem(t, b.do(t, http.MethodGet, "/auth/nothing", "", "", ""), 404, "about:blank")
	res := b.do(t, http.MethodGet, "/auth/register", "", "", "")
	requireProblem(t, res, 405, "about:blank")
	require.Contains(t, res.header.Get("Allow"), "POST")
	requireProblem(t, b.do(t, http.MethodPost, "/auth/me", "application/json", "{}", ""), 405, "about:blank")
}

func TestNewHTTPValidates(t *testing.T) {
	t.Parallel()
	_, err := ports.NewHTTP(nil, &ports.Config{MaxBodyBytes: -1})
	require.ErrorContains(t, err, "bus")
	require.ErrorContains(t, err, "MaxBodyBytes")
}

func TestProblemTypeBaseIsConfigurable(t *testing.T) {
	t.Parallel()
	bus, err := cqrs.New(nil)
	require.NoError(t, err)
	h, err := ports.NewHTTP(bus, &ports.Config{ProblemTypeBase: "https://errors.example/"})
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/auth/login", strings.NewReader(`{}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.Handler().ServeHTTP(w, r)
	require.Equal(t, 400, w.Code)
	require.Contains(t, w.Body.String(), `"type":"https://errors.example/validation"`)
}

// A handler failing for a reason that is not the client's is a logged 500
// problem without internals.
func TestServerErrorsAre500Problems(t *testing.T) {
	t.Parallel()
	bus, err := cqrs.New(nil)
	require.NoError(t, err)
	require.NoError(t, cqrs.HandleQuery(bus, func(context.Context, app.Login) (app.AccessToken, error) {
		return app.AccessToken{}, fmt.Errorf("database on fire")
	}))
	var logs bytes.Buffer
	h, err := ports.NewHTTP(bus, &ports.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/auth/login", strings.NewReader(`{"email":"ada@example.com","password":"x"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	h.Handler().ServeHTTP(w, r)
	require.Equal(t, 500, w.Code)
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	require.NotContains(t, w.Body.String(), "fire")
	require.Contains(t, logs.String(), "database on fire")
}

func TestActivity(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	token := b.verifiedUser(t, "ada@example.com")
	ada := b.sink.Last(t).AggregateID
	b.verifiedUser(t, "bob@example.com")
	bob := b.sink.Last(t).AggregateID
	require.NotEqual(t, ada, bob)
	// Added out of order, as a projection fed by several partitions may.
	t0 := dddkittest.T0
	require.NoError(t, b.activity.Add(ctx, ada, "e2", "verified", t0.Add(time.Minute)))
	require.NoError(t, b.activity.Add(ctx, ada, "e1", "registered", t0))
	require.NoError(t, b.activity.Add(ctx, bob, "e3", "registered", t0))

	res := b.do(t, http.MethodGet, "/auth/me/activity", "", "", token)
	require.Equal(t, 200, res.status, res.raw)
	require.Equal(t, []any{
		map[string]any{"type": "registered", "at": "2026-03-01T12:00:00Z"},
		map[string]any{"type": "verified", "at": "2026-03-01T12:01:00Z"},
	}, res.body["data"], "the caller's own activity only, oldest first")

	res = b.do(t, http.MethodGet, "/auth/me/activity", "", "", "")
	require.Equal(t, 401, res.status, res.raw)
	require.Equal(t, "application/problem+json", res.header.Get("Content-Type"))
	res = b.do(t, http.MethodGet, "/auth/me/activity", "", "", token+"x")
	requireProblem(t, res, 401, "#invalid-token")
}
