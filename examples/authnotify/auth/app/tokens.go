package app

import (
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Access token settings.
const (
	// MinSecretSize is the least length of an HS256 signing key in bytes
	// (RFC 7518, section 3.2: at least the hash size).
	MinSecretSize = 32
	// minDistinctBytes is the least number of different byte values in a
	// key: 32 spaces are 32 bytes, but no secret.
	minDistinctBytes = 8
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

// keyIDPattern is what a key ID may look like (it travels in the "kid"
// header).
var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Key is one HS256 signing key. ID is written as the "kid" header of the
// tokens it signs; "" means a single unnamed key (no "kid").
type Key struct {
	ID     string
	Secret []byte
}

// CheckSecret reports whether secret is fit to be an HS256 key: at least
// [MinSecretSize] bytes and not made of a handful of repeated characters.
func CheckSecret(secret []byte) error {
	if len(secret) < MinSecretSize {
		return fmt.Errorf("is %d bytes long, needs at least %d (e.g. openssl rand -base64 48)", len(secret), MinSecretSize)
	}
	var seen [256]bool
	distinct := 0
	for _, b := range secret {
		if !seen[b] {
			seen[b] = true
			distinct++
		}
	}
	if distinct < minDistinctBytes {
		return fmt.Errorf("has too little entropy (%d distinct characters, needs at least %d; e.g. openssl rand -base64 48)", distinct, minDistinctBytes)
	}
	return nil
}

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
// HMAC-SHA256 ("HS256") by github.com/golang-jwt/jwt/v5, carrying the
// user ID as subject and the user's credential version. The first key
// signs; every key verifies, so a key can be rotated without dropping the
// tokens in flight. It is safe for concurrent use.
type Tokens struct {
	keys   []Key
	byID   map[string][]byte
	all    jwt.VerificationKeySet
	ttl    time.Duration
	issuer string
	clock  func() time.Time
	parser *jwt.Parser
}

// NewTokens returns Tokens that sign with keys[0] and verify with any of
// keys (JWT_SECRET). Every key must pass [CheckSecret]; in a list of more
// than one, every key needs a distinct, non-empty ID. cfg nil means the
// defaults.
func NewTokens(keys []Key, cfg *TokenConfig) (*Tokens, error) {
	var c TokenConfig
	if cfg != nil {
		c = *cfg
	}
	var errs []error
	if len(keys) == 0 {
		errs = append(errs, errors.New("auth: no token key"))
	}
	byID := make(map[string][]byte, len(keys))
	var all jwt.VerificationKeySet
	var own []Key
	for i, k := range keys {
		if err := CheckSecret(k.Secret); err != nil {
			errs = append(errs, fmt.Errorf("auth: token key %d (%q) %w", i+1, k.ID, err))
		}
		switch {
		case k.ID == "" && len(keys) > 1:
			errs = append(errs, fmt.Errorf("auth: token key %d has no ID; a list of keys needs one per key", i+1))
		case k.ID != "" && !keyIDPattern.MatchString(k.ID):
			errs = append(errs, fmt.Errorf("auth: token key ID %q must be 1-64 of A-Z a-z 0-9 . _ -", k.ID))
		}
		if _, dup := byID[k.ID]; dup {
			errs = append(errs, fmt.Errorf("auth: token key ID %q appears twice", k.ID))
		}
		secret := append([]byte(nil), k.Secret...)
		byID[k.ID] = secret
		all.Keys = append(all.Keys, secret)
		own = append(own, Key{ID: k.ID, Secret: secret})
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
	t := &Tokens{keys: own, byID: byID, all: all, ttl: c.TTL, issuer: c.Issuer, clock: c.Clock}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(c.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return t.clock() }),
		jwt.WithStrictDecoding(),
	)
	return t, nil
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
	// CredentialVersion is the user's credential version when the token
	// was issued ([domain.User.CredentialVersion]); a token whose version
	// is no longer the user's is revoked.
	CredentialVersion int64
}

// claims is the JWT payload: the registered claims and "cv", the
// credential version.
type claims struct {
	jwt.RegisteredClaims
	CV int64 `json:"cv,omitempty"`
}

// Issue returns a new token for subject, carrying its credential version
// and valid for the configured TTL.
func (t *Tokens) Issue(subject string, credentialVersion int64) (AccessToken, error) {
	if subject == "" {
		return AccessToken{}, errors.New("auth: issue token: empty subject")
	}
	now := t.clock().Truncate(time.Second)
	exp := now.Add(t.ttl)
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: t.issuer, Subject: subject, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
			ID: rand.Text(),
		},
		CV: credentialVersion,
	})
	signer := t.keys[0]
	if signer.ID != "" {
		tok.Header["kid"] = signer.ID
	}
	s, err := tok.SignedString(signer.Secret)
	if err != nil {
		return AccessToken{}, fmt.Errorf("auth: issue token: %w", err)
	}
	return AccessToken{Token: s, TokenType: "Bearer", ExpiresIn: t.ttl, ExpiresAt: exp}, nil
}

// Verify checks a token's signature, header (alg HS256, a known "kid" if
// any, no critical extensions), issuer, issue time and expiry, and
// returns its claims. Every failure wraps [ErrInvalidToken]; an expired
// token also wraps [ErrTokenExpired]. Whether the credential version is
// still the user's is for the caller to check ([Authenticate]).
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
	var c claims
	_, err := t.parser.ParseWithClaims(token, &c, t.keyFor)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, ErrTokenExpired)
	case err != nil:
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	now := t.clock()
	switch {
	case c.Subject == "":
		return bad("no subject")
	case c.IssuedAt == nil:
		return bad("no issue time")
	case c.IssuedAt.After(now.Add(clockSkew)):
		return bad("issued in the future")
	}
	return Claims{Subject: c.Subject, ID: c.ID, IssuedAt: c.IssuedAt.Time, ExpiresAt: c.ExpiresAt.Time, CredentialVersion: c.CV}, nil
}

// keyFor checks the header fields that golang-jwt leaves to the caller
// and picks the verification key: the one named by "kid", or every key
// for a token without one (issued before the keys had IDs).
func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	if typ, ok := tok.Header["typ"]; ok && typ != "JWT" {
		return nil, errors.New("unsupported typ")
	}
	if _, ok := tok.Header["crit"]; ok {
		return nil, errors.New("unsupported critical header")
	}
	kid, ok := tok.Header["kid"]
	if !ok {
		return t.all, nil
	}
	id, _ := kid.(string)
	key, known := t.byID[id]
	if !known || id == "" {
		return nil, errors.New("unknown key ID")
	}
	return key, nil
}
