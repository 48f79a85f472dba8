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

	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
)

var secret = []byte("test secret 0123456789abcdefghijklmnop")

func newTokens(t testing.TB, c *clock) *app.Tokens {
	t.Helper()
	tokens, err := app.NewTokens([]app.Key{{Secret: secret}}, &app.TokenConfig{Clock: c.Now})
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
	c := dddkittest.NewClock(time.Time{})
	tokens := newTokens(t, c)
	tok, err := tokens.Issue("user-1", 0)
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

	other, _ := tokens.Issue("user-1", 0)
	require.NotEqual(t, tok.Token, other.Token, "unique token IDs")
}

func TestTokenExpiresAfter15Minutes(t *testing.T) {
	t.Parallel()
	c := dddkittest.NewClock(time.Time{})
	tokens := newTokens(t, c)
	tok, err := tokens.Issue("user-1", 0)
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
	c := dddkittest.NewClock(time.Time{})
	tokens := newTokens(t, c)
	good, err := tokens.Issue("user-1", 0)
	require.NoError(t, err)
	parts := strings.Split(good.Token, ".")
	exp := t0.Add(time.Hour).Unix()

	otherSecret, err := app.NewTokens([]app.Key{{Secret: []byte("another secret 0123456789abcdefghijklmnop")}}, &app.TokenConfig{Clock: c.Now})
	require.NoError(t, err)
	foreign, err := otherSecret.Issue("user-1", 0)
	require.NoError(t, err)
	otherIssuer, err := app.NewTokens([]app.Key{{Secret: secret}}, &app.TokenConfig{Clock: c.Now, Issuer: "someone-else"})
	require.NoError(t, err)
	wrongIss, err := otherIssuer.Issue("user-1", 0)
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
	_, err := app.NewTokens([]app.Key{{Secret: make([]byte, 31)}}, nil)
	require.ErrorContains(t, err, "needs at least 32")
	_, err = app.NewTokens([]app.Key{{Secret: secret}}, &app.TokenConfig{TTL: -time.Second})
	require.Error(t, err)
	tokens, err := app.NewTokens([]app.Key{{Secret: secret}}, nil)
	require.NoError(t, err)
	_, err = tokens.Issue("", 0)
	require.Error(t, err)
}

func FuzzTokenVerify(f *testing.F) {
	c := dddkittest.NewClock(time.Time{})
	tokens := newTokens(f, c)
	good, _ := tokens.Issue("user-1", 0)
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

func TestTokensCarryTheCredentialVersion(t *testing.T) {
	t.Parallel()
	c := dddkittest.NewClock(time.Time{})
	tokens := newTokens(t, c)
	tok, err := tokens.Issue("user-1", 1764402000123456)
	require.NoError(t, err)
	got, err := tokens.Verify(tok.Token)
	require.NoError(t, err)
	require.EqualValues(t, 1764402000123456, got.CredentialVersion)
}

// Key rotation: the first key signs and names itself in "kid"; every key
// verifies, so tokens signed by the previous key keep working until it is
// removed from the list.
func TestTokenKeyRotation(t *testing.T) {
	t.Parallel()
	c := dddkittest.NewClock(time.Time{})
	oldKey := app.Key{ID: "k1", Secret: []byte("the old key 0123456789abcdefghijklmnop")}
	newKey := app.Key{ID: "k2", Secret: []byte("the new key 0123456789abcdefghijklmnop")}
	plain, err := app.NewTokens([]app.Key{{Secret: oldKey.Secret}}, &app.TokenConfig{Clock: c.Now})
	require.NoError(t, err)
	before, err := app.NewTokens([]app.Key{oldKey}, &app.TokenConfig{Clock: c.Now})
	require.NoError(t, err)
	during, err := app.NewTokens([]app.Key{newKey, oldKey}, &app.TokenConfig{Clock: c.Now})
	require.NoError(t, err)
	after, err := app.NewTokens([]app.Key{newKey}, &app.TokenConfig{Clock: c.Now})
	require.NoError(t, err)

	unnamed, err := plain.Issue("user-1", 0)
	require.NoError(t, err)
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(unnamed.Token, ".")[0])
	require.JSONEq(t, `{"alg":"HS256","typ":"JWT"}`, string(hdr), "a single plain secret writes no kid")
	oldTok, err := before.Issue("user-1", 0)
	require.NoError(t, err)
	hdr, _ = base64.RawURLEncoding.DecodeString(strings.Split(oldTok.Token, ".")[0])
	require.JSONEq(t, `{"alg":"HS256","typ":"JWT","kid":"k1"}`, string(hdr))
	newTok, err := during.Issue("user-1", 0)
	require.NoError(t, err)
	hdr, _ = base64.RawURLEncoding.DecodeString(strings.Split(newTok.Token, ".")[0])
	require.JSONEq(t, `{"alg":"HS256","typ":"JWT","kid":"k2"}`, string(hdr), "the first key signs")

	for _, tok := range []string{unnamed.Token, oldTok.Token, newTok.Token} {
		_, err := during.Verify(tok)
		require.NoError(t, err, "during the rotation every key verifies")
	}
	_, err = before.Verify(newTok.Token)
	require.ErrorIs(t, err, app.ErrInvalidToken, "unknown kid")
	_, err = after.Verify(oldTok.Token)
	require.ErrorIs(t, err, app.ErrInvalidToken, "a removed key verifies nothing")
	_, err = after.Verify(unnamed.Token)
	require.ErrorIs(t, err, app.ErrInvalidToken, "a removed key verifies nothing")
	_, err = after.Verify(newTok.Token)
	require.NoError(t, err)

	// A kid names the one key to try: a token signed with k1 but naming
	// k2 fails.
	mislabelled := forge(oldKey.Secret, `{"alg":"HS256","typ":"JWT","kid":"k2"}`, `{"iss":"authnotify","sub":"u","iat":1,"exp":`+itoa(t0.Add(time.Hour).Unix())+`}`)
	_, err = during.Verify(mislabelled)
	require.ErrorIs(t, err, app.ErrInvalidToken)
}

func TestNewTokensRefusesWeakKeys(t *testing.T) {
	t.Parallel()
	good := []byte("a good key 0123456789abcdefghijklmnop")
	for name, keys := range map[string][]app.Key{
		"no keys":           nil,
		"32 spaces":         {{Secret: bytes.Repeat([]byte(" "), 32)}},
		"few characters":    {{Secret: bytes.Repeat([]byte("abc"), 20)}},
		"unnamed in a list": {{ID: "k1", Secret: good}, {Secret: good}},
		"bad ID":            {{ID: "k 1", Secret: good}},
		"duplicate ID":      {{ID: "k1", Secret: good}, {ID: "k1", Secret: good}},
	} {
		_, err := app.NewTokens(keys, nil)
		require.Error(t, err, name)
	}
	_, err := app.NewTokens([]app.Key{{Secret: bytes.Repeat([]byte(" "), 32)}}, nil)
	require.ErrorContains(t, err, "too little entropy")
}
