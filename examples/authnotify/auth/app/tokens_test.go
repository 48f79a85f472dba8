package app_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/examples/authnotify/internal/authtest"
)

var secret = bytes.Repeat([]byte("s"), 32)

func newTokens(t testing.TB, c *clock) *app.Tokens {
	t.Helper()
	tokens, err := app.NewTokens(secret, &app.TokenConfig{Clock: c.Now})
	require.NoError(t, err)
	return tokens
}

// forge signs arbitrary header and claims with key, to test what Verify
// accepts.
func forge(key []byte, header, claims string) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

func TestTokenIssueAndVerify(t *testing.T) {
	t.Parallel()
	c := authtest.NewClock()
	tokens := newTokens(t, c)
	tok, err := tokens.Issue("user-1")
	require.NoError(t, err)
	require.Equal(t, "Bearer", tok.TokenType)
	require.Equal(t, app.DefaultTokenTTL, tok.ExpiresIn)
	require.Equal(t, t0.Add(15*time.Minute), tok.ExpiresAt)
	require.Equal(t, 2, strings.Count(tok.Token, "."))

	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.Token, ".")[0])
	require.JSONEq(t, `{"alg":"HS256","typ":"JWT"}`, string(hdr))
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.Token, ".")[1])
	var claims map[string]any
	require.NoError(t, json.Unmarshal(raw, &claims))
	require.Equal(t, "authnotify", claims["iss"])
	require.Equal(t, "user-1", claims["sub"])
	require.EqualValues(t, t0.Unix(), claims["iat"])
	require.EqualValues(t, t0.Add(15*time.Minute).Unix(), claims["exp"])
	require.NotEmpty(t, claims["jti"])

	got, err := tokens.Verify(tok.Token)
	require.NoError(t, err)
	require.Equal(t, "user-1", got.Subject)
	require.Equal(t, t0, got.IssuedAt.UTC())
	require.Equal(t, t0.Add(15*time.Minute), got.ExpiresAt.UTC())

	other, _ := tokens.Issue("user-1")
	require.NotEqual(t, tok.Token, other.Token, "unique token IDs")
}

func TestTokenExpiresAfter15Minutes(t *testing.T) {
	t.Parallel()
	c := authtest.NewClock()
	tokens := newTokens(t, c)
	tok, err := tokens.Issue("user-1")
	require.NoError(t, err)

	c.Advance(15*time.Minute - time.Second)
	_, err = tokens.Verify(tok.Token)
	require.NoError(t, err)

	c.Advance(time.Second)
	_, err = tokens.Verify(tok.Token)
	require.ErrorIs(t, err, app.ErrTokenExpired)
	require.ErrorIs(t, err, app.ErrInvalidToken)
}

func TestTokenVerifyRejects(t *testing.T) {
	t.Parallel()
	c := authtest.NewClock()
	tokens := newTokens(t, c)
	good, err := tokens.Issue("user-1")
	require.NoError(t, err)
	parts := strings.Split(good.Token, ".")
	exp := t0.Add(time.Hour).Unix()

	otherSecret, err := app.NewTokens(bytes.Repeat([]byte("x"), 32), &app.TokenConfig{Clock: c.Now})
	require.NoError(t, err)
	foreign, err := otherSecret.Issue("user-1")
	require.NoError(t, err)
	otherIssuer, err := app.NewTokens(secret, &app.TokenConfig{Clock: c.Now, Issuer: "someone-else"})
	require.NoError(t, err)
	wrongIss, err := otherIssuer.Issue("user-1")
	require.NoError(t, err)

	for name, token := range map[string]string{
		"empty":              "",
		"garbage":            "garbage",
		"two parts":          parts[0] + "." + parts[1],
		"four parts":         good.Token + ".x",
		"bad signature":      parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 32)),
		"no signature":       parts[0] + "." + parts[1] + ".",
		"other secret":       foreign.Token,
		"tampered claims":    parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"authnotify","sub":"admin","iat":1,"exp":9999999999}`)) + "." + parts[2],
		"alg none":           base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		"signed alg none":    forge(secret, `{"alg":"none"}`, `{"iss":"authnotify","sub":"u","iat":1,"exp":`+itoa(exp)+`}`),
		"alg HS512":          forge(secret, `{"alg":"HS512","typ":"JWT"}`, `{"iss":"authnotify","sub":"u","iat":1,"exp":`+itoa(exp)+`}`),
		"crit header":        forge(secret, `{"alg":"HS256","crit":["x"]}`, `{"iss":"authnotify","sub":"u","iat":1,"exp":`+itoa(exp)+`}`),
		"wrong typ":          forge(secret, `{"alg":"HS256","typ":"at+jwt+x"}`, `{"iss":"authnotify","sub":"u","iat":1,"exp":`+itoa(exp)+`}`),
		"wrong issuer":       wrongIss.Token,
		"no subject":         forge(secret, `{"alg":"HS256"}`, `{"iss":"authnotify","iat":1,"exp":`+itoa(exp)+`}`),
		"no expiry":          forge(secret, `{"alg":"HS256"}`, `{"iss":"authnotify","sub":"u","iat":1}`),
		"issued in future":   forge(secret, `{"alg":"HS256"}`, `{"iss":"authnotify","sub":"u","iat":`+itoa(t0.Add(time.Hour).Unix())+`,"exp":`+itoa(exp)+`}`),
		"exp not a number":   forge(secret, `{"alg":"HS256"}`, `{"iss":"authnotify","sub":"u","iat":1,"exp":"soon"}`),
		"claims not JSON":    forge(secret, `{"alg":"HS256"}`, `not json`),
		"trailing claims":    forge(secret, `{"alg":"HS256"}`, `{"iss":"authnotify","sub":"u","iat":1,"exp":`+itoa(exp)+`}{}`),
		"header not JSON":    forge(secret, `nope`, `{"iss":"authnotify","sub":"u","iat":1,"exp":`+itoa(exp)+`}`),
		"padded base64":      parts[0] + "=." + parts[1] + "." + parts[2],
		"oversized":          strings.Repeat("a", 5000),
		"expired and forged": forge(secret, `{"alg":"HS256"}`, `{"iss":"authnotify","sub":"u","iat":1,"exp":2}`),
	} {
		_, err := tokens.Verify(token)
		require.ErrorIs(t, err, app.ErrInvalidToken, name)
	}

	// A token with the right secret, issuer and header passes even when
	// another library wrote it (sanity check of forge).
	_, err = tokens.Verify(forge(secret, `{"alg":"HS256","typ":"JWT"}`, `{"iss":"authnotify","sub":"u","iat":1,"exp":`+itoa(exp)+`}`))
	require.NoError(t, err)
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestNewTokensValidates(t *testing.T) {
	t.Parallel()
	_, err := app.NewTokens(make([]byte, 31), nil)
	require.ErrorContains(t, err, "at least 32 bytes")
	_, err = app.NewTokens(secret, &app.TokenConfig{TTL: -time.Second})
	require.Error(t, err)
	tokens, err := app.NewTokens(secret, nil)
	require.NoError(t, err)
	_, err = tokens.Issue("")
	require.Error(t, err)
}

func FuzzTokenVerify(f *testing.F) {
	c := authtest.NewClock()
	tokens := newTokens(f, c)
	good, _ := tokens.Issue("user-1")
	f.Add(good.Token)
	f.Add("a.b.c")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		claims, err := tokens.Verify(token)
		if err == nil {
			require.NotEmpty(t, claims.Subject)
		}
	})
}
