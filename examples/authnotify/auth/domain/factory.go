package domain

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/valueobject"
)

// MinCodeKeySize is the least length of the key that code hashes are made
// with.
const MinCodeKeySize = 32

// FactoryConfig holds the optional collaborators of a [Factory]. The zero
// value (or nil) means production defaults.
type FactoryConfig struct {
	// Clock gives the time for expiry and throttling and for the events'
	// OccurredAt. nil means time.Now.
	Clock aggregate.Clock
	// Codes makes new one-time codes. nil means [RandomCode].
	Codes CodeGenerator
	// RegistrationTokens makes new registration tokens. nil means
	// [RandomRegistrationToken].
	RegistrationTokens TokenGenerator
	// OldCodeKeys still verify codes and registration tokens hashed before
	// the code key rotated (the code key is derived from the field
	// encryption key: pass the keys derived from the ring's other keys).
	// New hashes always use the code key.
	OldCodeKeys [][]byte
}

// Factory creates and restores [User] aggregates with the collaborators
// they need: a clock, a code generator, the sealer that encrypts codes for
// the events and the key that code hashes are made with. Every User it
// makes keeps a reference to it. A Factory is safe for concurrent use.
type Factory struct {
	clock   aggregate.Clock
	codes   CodeGenerator
	tokens  TokenGenerator
	sealer  CodeSealer
	codeKey []byte
	oldKeys [][]byte // verify only
}

// NewFactory returns a Factory. sealer encrypts codes for the events;
// codeKey, at least [MinCodeKeySize] bytes, keys the HMAC under which codes
// are stored (derive it from the field encryption key with
// fieldcrypt.Cipher.DeriveKey). Every replica must use the same key, or a
// code issued by one will not verify on another.
func NewFactory(sealer CodeSealer, codeKey []byte, cfg *FactoryConfig) (*Factory, error) {
	var errs []error
	if sealer == nil {
		errs = append(errs, errors.New("auth: NewFactory: sealer is nil"))
	}
	if len(codeKey) < MinCodeKeySize {
		errs = append(errs, fmt.Errorf("auth: NewFactory: code key must be at least %d bytes, got %d", MinCodeKeySize, len(codeKey)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	f := &Factory{clock: time.Now, codes: RandomCode, tokens: RandomRegistrationToken, sealer: sealer, codeKey: append([]byte(nil), codeKey...)}
	if cfg != nil && cfg.Clock != nil {
		f.clock = cfg.Clock
	}
	if cfg != nil && cfg.Codes != nil {
		f.codes = cfg.Codes
	}
	if cfg != nil && cfg.RegistrationTokens != nil {
		f.tokens = cfg.RegistrationTokens
	}
	if cfg != nil {
		for _, k := range cfg.OldCodeKeys {
			f.oldKeys = append(f.oldKeys, append([]byte(nil), k...))
		}
	}
	return f, nil
}

// matches reports whether stored is hash(key, id, secret) under the code
// key or one of the old code keys, so that a rotation of the field
// encryption key does not void codes and tokens issued just before it.
func (f *Factory) matches(hash func(key []byte, id, secret string) []byte, id, secret string, stored []byte) bool {
	if hmac.Equal(hash(f.codeKey, id, secret), stored) {
		return true
	}
	for _, k := range f.oldKeys {
		if hmac.Equal(hash(k, id, secret), stored) {
			return true
		}
	}
	return false
}

// CanonicalEmail returns the form in which addresses are stored and
// looked up: lower-cased. valueobject keeps the local part as typed, but
// nobody expects Ada@example.com and ada@example.com to be two accounts.
func CanonicalEmail(e valueobject.Email) valueobject.Email {
	if e.IsZero() {
		return e
	}
	c, err := valueobject.ParseEmail(strings.ToLower(e.String()))
	if err != nil { // unreachable: a valid address is ASCII and stays valid lower-cased
		return e
	}
	return c
}

func (f *Factory) newUser(id string) *User {
	u := &User{f: f}
	u.Init(id, authevents.AggregateType, u.apply, aggregate.WithClock(f.clock))
	return u
}

// Register creates a new, unverified user and records
// [authevents.UserRegistered] with a fresh code, sealed, and a fresh
// registration token ([User.IssuedRegistrationToken]; only its hash is
// kept). passwordHash is
// the argon2id PHC string of the user's password (valueobject.Hasher.Hash);
// anything else is refused, so that a plain password cannot be stored by
// mistake. The email is stored in its [CanonicalEmail] form.
func (f *Factory) Register(id valueobject.ID, email valueobject.Email, passwordHash string) (*User, error) {
	var errs []error
	if id.IsZero() {
		errs = append(errs, errors.New("auth: register: zero user ID"))
	}
	if email.IsZero() {
		errs = append(errs, errors.New("auth: register: zero email"))
	}
	if _, err := valueobject.ParsePasswordHash(passwordHash); err != nil {
		errs = append(errs, fmt.Errorf("auth: register: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	u := f.newUser(id.String())
	now := f.clock()
	issued, err := u.newCode(now)
	if err != nil {
		return nil, err
	}
	token, err := u.newRegistrationToken()
	if err != nil {
		return nil, err
	}
	if err := u.Record(authevents.UserRegistered{
		UserID:        u.ID(),
		Email:         CanonicalEmail(email).String(),
		EncryptedCode: issued.sealed,
		CodeExpiresAt: issued.otp.expiresAt,
		RegisteredAt:  now,
	}); err != nil {
		return nil, err
	}
	// Secrets are not part of any event; they are set once the event
	// that makes them valid is recorded.
	u.passwordHash = passwordHash
	u.code.hash = issued.otp.hash
	u.registrationHash = hashRegistrationToken(f.codeKey, u.ID(), token)
	u.issuedToken = token
	return u, nil
}

// Unmarshal rebuilds a user from its stored state. The user is Init'ed
// and has no uncommitted events; the caller (a repository adapter) then
// calls aggregate.Restore with the stored version. A snapshot that breaks an
// invariant is refused: stored data that cannot be trusted is not used.
func (f *Factory) Unmarshal(s Snapshot) (*User, error) {
	id, err := valueobject.ParseID(s.ID)
	if err != nil {
		return nil, fmt.Errorf("auth: unmarshal user: %w", err)
	}
	email, err := valueobject.ParseEmail(s.Email)
	if err != nil {
		return nil, fmt.Errorf("auth: unmarshal user %s: %w", id, err)
	}
	if _, err := valueobject.ParsePasswordHash(s.PasswordHash); err != nil {
		return nil, fmt.Errorf("auth: unmarshal user %s: %w", id, err)
	}
	switch s.Status {
	case StatusUnverified, StatusVerified, StatusExpired:
	default:
		return nil, fmt.Errorf("auth: unmarshal user %s: unknown status %q", id, s.Status)
	}
	if s.CreatedAt.IsZero() {
		return nil, fmt.Errorf("auth: unmarshal user %s: no creation time", id)
	}
	if s.Status == StatusVerified && s.VerifiedAt.IsZero() {
		return nil, fmt.Errorf("auth: unmarshal user %s: verified without a verification time", id)
	}
	if s.CodeFailures < 0 || s.CodeFailures > MaxCodeAttempts {
		return nil, fmt.Errorf("auth: unmarshal user %s: code failures %d out of range [0, %d]", id, s.CodeFailures, MaxCodeAttempts)
	}
	if len(s.CodeHash) != 0 && len(s.CodeHash) != 32 {
		return nil, fmt.Errorf("auth: unmarshal user %s: code hash has %d bytes, want 32", id, len(s.CodeHash))
	}
	if len(s.RegistrationHash) != 0 && len(s.RegistrationHash) != 32 {
		return nil, fmt.Errorf("auth: unmarshal user %s: registration token hash has %d bytes, want 32", id, len(s.RegistrationHash))
	}
	u := f.newUser(id.String())
	u.email = email
	u.passwordHash = s.PasswordHash
	u.status = s.Status
	u.createdAt = s.CreatedAt
	u.verifiedAt = s.VerifiedAt
	u.passwordChangedAt = s.PasswordChangedAt
	u.code = otp{
		hash:      append([]byte(nil), s.CodeHash...),
		issuedAt:  s.CodeIssuedAt,
		expiresAt: s.CodeExpiresAt,
		failures:  s.CodeFailures,
	}
	if len(u.code.hash) == 0 {
		u.code.hash = nil
	}
	if len(s.RegistrationHash) != 0 {
		u.registrationHash = append([]byte(nil), s.RegistrationHash...)
	}
	return u, nil
}

// Now returns the current time on the factory's clock (FactoryConfig.Clock),
// the clock its users record their events with.
func (f *Factory) Now() time.Time { return f.clock() }
