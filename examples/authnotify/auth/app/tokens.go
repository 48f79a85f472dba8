package app

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Access token settings.
const (
	// MinSecretSize is the least length of the HS256 signing secret in
	// bytes (RFC 7518, section 3.2: at least the hash size).
	MinSecretSize = 32
	// DefaultTokenTTL is how long an access token is valid.
	DefaultTokenTTL = 15 * time.Minute
	// DefaultIssuer is the "iss" claim of the tokens.
	DefaultIssuer = "authnotify"
	// maxTokenSize bounds what Verify reads.
	maxTokenSize = 4096
	// clockSkew is how far in the future "iat" may be, for replicas whose
	// clocks differ a little. Expiry is checked without leeway.
	clockSkew = time.Minute
)

// TokenConfig configures [Tokens]. The zero value (or nil) means the
// defaults.
type TokenConfig struct {
	// TTL is how long a token is valid; 0 means [DefaultTokenTTL].
	TTL time.Duration
	// Issuer is the "iss" claim written and required; "" means
	// [DefaultIssuer].
	Issuer string
	// Clock gives the time; nil means time.Now.
	Clock func() time.Time
}

// Tokens issues and verifies access tokens: JWTs (RFC 7519) signed with
// HMAC-SHA256 ("HS256"), carrying the user ID as subject. It is written on
// the standard library alone. It is safe for concurrent use.
type Tokens struct {
	secret []byte
	ttl    time.Duration
	issuer string
	clock  func() time.Time
}

// NewTokens returns Tokens signing with secret, which must have at least
// [MinSecretSize] bytes (JWT_SECRET); cfg nil means the defaults.
func NewTokens(secret []byte, cfg *TokenConfig) (*Tokens, error) {
	var c TokenConfig
	if cfg != nil {
		c = *cfg
	}
	var errs []error
	if len(secret) < MinSecretSize {
		errs = append(errs, fmt.Errorf("auth: token secret must be at least %d bytes, got %d", MinSecretSize, len(secret)))
	}
	if c.TTL < 0 {
		errs = append(errs, fmt.Errorf("auth: TokenConfig.TTL is %s, must be positive", c.TTL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.TTL == 0 {
		c.TTL = DefaultTokenTTL
	}
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return &Tokens{secret: append([]byte(nil), secret...), ttl: c.TTL, issuer: c.Issuer, clock: c.Clock}, nil
}

// AccessToken is an issued token and what a client needs to know about it.
type AccessToken struct {
	Token     string
	TokenType string // always "Bearer"
	ExpiresIn time.Duration
	ExpiresAt time.Time
}

// Claims are the verified contents of a token.
type Claims struct {
	Subject   string // the user ID
	ID        string // the token ID ("jti")
	IssuedAt  time.Time
	ExpiresAt time.Time
}

type header struct {
	Alg  string   `json:"alg"`
	Typ  string   `json:"typ,omitempty"`
	Crit []string `json:"crit,omitempty"`
}

type claims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
	Jti string `json:"jti"`
}

var b64 = base64.RawURLEncoding.Strict()

// encodedHeader is the base64url of {"alg":"HS256","typ":"JWT"}.
var encodedHeader = b64.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// Issue returns a new token for subject, valid for the configured TTL.
func (t *Tokens) Issue(subject string) (AccessToken, error) {
	if subject == "" {
		return AccessToken{}, errors.New("auth: issue token: empty subject")
	}
	now := t.clock().Truncate(time.Second)
	exp := now.Add(t.ttl)
	payload, err := json.Marshal(claims{Iss: t.issuer, Sub: subject, Iat: now.Unix(), Exp: exp.Unix(), Jti: rand.Text()})
	if err != nil {
		return AccessToken{}, fmt.Errorf("auth: issue token: %w", err)
	}
	signingInput := encodedHeader + "." + b64.EncodeToString(payload)
	token := signingInput + "." + b64.EncodeToString(t.sign(signingInput))
	return AccessToken{Token: token, TokenType: "Bearer", ExpiresIn: t.ttl, ExpiresAt: exp}, nil
}

func (t *Tokens) sign(signingInput string) []byte {
	m := hmac.New(sha256.New, t.secret)
	m.Write([]byte(signingInput))
	return m.Sum(nil)
}

// Verify checks a token's signature first, then its header (alg HS256,
// no critical extensions), issuer, issue time and expiry, and returns its
// claims. Every failure wraps [ErrInvalidToken]; an expired token also
// wraps [ErrTokenExpired].
func (t *Tokens) Verify(token string) (Claims, error) {
	bad := func(reason string) (Claims, error) {
		return Claims{}, fmt.Errorf("%w: %s", ErrInvalidToken, reason)
	}
	if token == "" {
		return bad("empty")
	}
	if len(token) > maxTokenSize {
		return bad("too long")
	}
	h, rest, ok := strings.Cut(token, ".")
	if !ok {
		return bad("not a JWT")
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(s, ".") {
		return bad("not a JWT")
	}
	sig, err := b64.DecodeString(s)
	if err != nil || !hmac.Equal(sig, t.sign(h+"."+p)) {
		return bad("signature does not match")
	}

	var hdr header
	if err := decodeSegment(h, &hdr); err != nil {
		return bad("malformed header")
	}
	if hdr.Alg != "HS256" || (hdr.Typ != "" && hdr.Typ != "JWT") || len(hdr.Crit) > 0 {
		return bad("unsupported header")
	}
	var c claims
	if err := decodeSegment(p, &c); err != nil {
		return bad("malformed claims")
	}
	now := t.clock()
	switch {
	case c.Iss != t.issuer:
		return bad("wrong issuer")
	case c.Sub == "":
		return bad("no subject")
	case c.Exp == 0 || c.Iat == 0:
		return bad("no expiry or issue time")
	case time.Unix(c.Iat, 0).After(now.Add(clockSkew)):
		return bad("issued in the future")
	case !now.Before(time.Unix(c.Exp, 0)):
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrTokenExpired)
	}
	return Claims{Subject: c.Sub, ID: c.Jti, IssuedAt: time.Unix(c.Iat, 0), ExpiresAt: time.Unix(c.Exp, 0)}, nil
}

func decodeSegment(seg string, v any) error {
	raw, err := b64.DecodeString(seg)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return err
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}
