package valueobject

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

const fieldPasswordHash = "passwordHash"

// Bounds on argon2id parameters, for [NewHasher] and for hashes read by
// [ParsePasswordHash]. They are what is accepted, not what is recommended:
// they keep a corrupt or hostile stored hash from making [Hasher.Verify]
// allocate gigabytes or run for hours, while admitting every sane setting.
const (
	maxArgon2Memory      = 1 << 20 // KiB, 1 GiB
	maxArgon2Iterations  = 100
	minArgon2SaltLength  = 8
	maxArgon2SaltLength  = 64
	minArgon2KeyLength   = 16
	maxArgon2KeyLength   = 64
	maxPasswordHashBytes = 256 // the longest valid PHC string has 210 bytes
)

// Argon2Params are the cost parameters of argon2id (RFC 9106).
type Argon2Params struct {
	// Memory is the memory size in KiB, at least 8×Parallelism and at most
	// 1 GiB (1048576).
	Memory uint32
	// Iterations is the number of passes over the memory, 1 to 100.
	Iterations uint32
	// Parallelism is the number of lanes (threads), at least 1.
	Parallelism uint8
	// SaltLength is the length of the random salt in bytes, 8 to 64.
	SaltLength uint32
	// KeyLength is the length of the derived key in bytes, 16 to 64.
	KeyLength uint32
}

// DefaultArgon2Params are the OWASP Password Storage Cheat Sheet minimum
// for argon2id: 19 MiB of memory, 2 iterations, 1 lane, with a 16-byte salt
// and a 32-byte key. One hash takes a few tens of milliseconds on a current
// server core.
var DefaultArgon2Params = Argon2Params{
	Memory:      19 * 1024,
	Iterations:  2,
	Parallelism: 1,
	SaltLength:  16,
	KeyLength:   32,
}

// owaspArgon2Params returns the values DefaultArgon2Params is declared with
// (a test keeps the two equal), for the zero Hasher, whatever a program
// assigned to the variable since.
func owaspArgon2Params() Argon2Params {
	return Argon2Params{
		Memory:      19 * 1024,
		Iterations:  2,
		Parallelism: 1,
		SaltLength:  16,
		KeyLength:   32,
	}
}

// check returns the joined reasons why p is out of bounds, or nil.
func (p Argon2Params) check() error {
	var errs []error
	if p.Parallelism < 1 {
		errs = append(errs, errors.New("parallelism must be at least 1"))
	}
	if p.Memory < 8*uint32(max(p.Parallelism, 1)) || p.Memory > maxArgon2Memory {
		errs = append(errs, fmt.Errorf("memory %d KiB out of range [8×parallelism = %d, %d]", p.Memory, 8*uint32(max(p.Parallelism, 1)), maxArgon2Memory))
	}
	if p.Iterations < 1 || p.Iterations > maxArgon2Iterations {
		errs = append(errs, fmt.Errorf("iterations %d out of range [1, %d]", p.Iterations, maxArgon2Iterations))
	}
	if p.SaltLength < minArgon2SaltLength || p.SaltLength > maxArgon2SaltLength {
		errs = append(errs, fmt.Errorf("salt length %d out of range [%d, %d]", p.SaltLength, minArgon2SaltLength, maxArgon2SaltLength))
	}
	if p.KeyLength < minArgon2KeyLength || p.KeyLength > maxArgon2KeyLength {
		errs = append(errs, fmt.Errorf("key length %d out of range [%d, %d]", p.KeyLength, minArgon2KeyLength, maxArgon2KeyLength))
	}
	return errors.Join(errs...)
}

// Hasher hashes passwords with argon2id and verifies them. It is safe for
// concurrent use. Create it with [NewHasher]; the zero Hasher works too and
// uses the OWASP parameters that [DefaultArgon2Params] is declared with.
type Hasher struct {
	params Argon2Params // zero in the zero Hasher
}

// NewHasher returns a Hasher that makes new hashes with params. A nil params
// means [DefaultArgon2Params]; in a non-nil one, each zero field takes its
// value from DefaultArgon2Params. It returns an error, joining every
// problem, when a parameter is out of the bounds documented at
// [Argon2Params].
//
// The parameters only affect new hashes: [Hasher.Verify] reads them from
// each stored hash, so raising them later does not lock anybody out, and
// [Hasher.NeedsRehash] tells when to replace an old hash.
func NewHasher(params *Argon2Params) (*Hasher, error) {
	p := DefaultArgon2Params
	if params != nil {
		p = *params
		d := DefaultArgon2Params
		if p.Memory == 0 {
			p.Memory = d.Memory
		}
		if p.Iterations == 0 {
			p.Iterations = d.Iterations
		}
		if p.Parallelism == 0 {
			p.Parallelism = d.Parallelism
		}
		if p.SaltLength == 0 {
			p.SaltLength = d.SaltLength
		}
		if p.KeyLength == 0 {
			p.KeyLength = d.KeyLength
		}
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("valueobject: invalid argon2 parameters: %w", err)
	}
	return &Hasher{params: p}, nil
}

// Params returns the parameters used for new hashes.
func (h *Hasher) Params() Argon2Params {
	if h.params == (Argon2Params{}) {
		return owaspArgon2Params()
	}
	return h.params
}

// Hash hashes pw with a fresh random salt and returns it as a PHC string,
// the form to store:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// where salt and key are unpadded standard base64. Hashing the same
// password twice gives different strings. The only error is an [*Error]
// wrapping [ErrEmpty] for the zero Password.
func (h *Hasher) Hash(pw Password) (string, error) {
	if pw.IsZero() {
		return "", newError(fieldPassword, ErrEmpty, "must not be empty")
	}
	return h.hash(pw.Reveal()), nil
}

func (h *Hasher) hash(plain string) string {
	p := h.Params()
	salt := make([]byte, p.SaltLength)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails (Go 1.24+).
	key := argon2.IDKey([]byte(plain), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
	return PasswordHash{Params: p, Salt: salt, Key: key}.String()
}

// Verify checks plain against a hash made by [Hasher.Hash], by this or any
// other Hasher or by another argon2id implementation that writes PHC
// strings: the parameters, salt and key length come from the hash. It
// returns nil when the password matches and [ErrPasswordMismatch] when it
// does not; the keys are compared in constant time.
//
// plain is deliberately a string, not a [Password]: a password is checked
// against the policy when it is set, not at every login, so that tightening
// the policy does not lock out existing users.
//
// A hash that cannot be parsed gives the [*Error] of [ParsePasswordHash]
// (Field "passwordHash", wrapping [ErrEmpty], [ErrUnknownHashFormat] or
// [ErrMalformedHash]). That means the stored data is broken, not that the
// user typed something wrong.
//
// A sign-in for an unknown user should still call Verify, against any hash
// made with the current parameters, so that the response time does not
// tell which accounts exist.
func (h *Hasher) Verify(hash, plain string) error {
	ph, err := ParsePasswordHash(hash)
	if err != nil {
		return err
	}
	key := argon2.IDKey([]byte(plain), ph.Salt, ph.Params.Iterations, ph.Params.Memory, ph.Params.Parallelism, uint32(len(ph.Key)))
	if subtle.ConstantTimeCompare(key, ph.Key) != 1 {
		return ErrPasswordMismatch
	}
	return nil
}

// NeedsRehash reports whether hash was made with parameters other than the
// Hasher's (memory, iterations, parallelism, salt or key length), or cannot
// be parsed at all. Hashes move to new parameters as users sign in: after a
// successful [Hasher.Verify], while the plain password is at hand, store a
// new hash when NeedsRehash reports true. [Hasher.VerifyAndRehash] does both
// steps in one call.
func (h *Hasher) NeedsRehash(hash string) bool {
	ph, err := ParsePasswordHash(hash)
	if err != nil {
		return true
	}
	return ph.Params != h.Params()
}

// VerifyAndRehash is [Hasher.Verify] followed, on success, by
// [Hasher.NeedsRehash]: when the stored hash was made with other
// parameters, it returns a new hash of plain with the Hasher's parameters,
// to store in place of the old one; otherwise newHash is "". The error is
// that of Verify.
//
// The new hash is made without checking plain against a [PasswordPolicy]:
// the password was accepted when it was set, and a policy tightened since
// must not stop its hash from being upgraded.
func (h *Hasher) VerifyAndRehash(hash, plain string) (newHash string, err error) {
	if err := h.Verify(hash, plain); err != nil {
		return "", err
	}
	if !h.NeedsRehash(hash) {
		return "", nil
	}
	return h.hash(plain), nil
}

// PasswordHash is a parsed argon2id hash in PHC string format. Most code
// does not need it: [Hasher.Hash] returns and [Hasher.Verify] takes the
// string form. It is exported for inspection and migration tools.
type PasswordHash struct {
	// Params holds the cost parameters; SaltLength and KeyLength equal
	// len(Salt) and len(Key).
	Params Argon2Params
	Salt   []byte
	Key    []byte
}

// ParsePasswordHash parses an argon2id, version 19 (0x13), hash in PHC
// string format:
//
//	$argon2id$v=19$m=<memory KiB>,t=<iterations>,p=<parallelism>$<salt>$<key>
//
// The parameters must appear in this order, as decimal numbers without
// sign or leading zeros, within the bounds documented at [Argon2Params]; the
// salt and key must be canonical unpadded standard base64. This is the form
// written by this package and by the common argon2 libraries (the reference
// implementation, libsodium, argon2-cffi). Optional PHC parts such as a
// "keyid=" or "data=" parameter are not supported.
//
// Because the text is strict, String of the result gives back exactly the
// input. Errors are [*Error] with Field "passwordHash" wrapping [ErrEmpty],
// [ErrUnknownHashFormat] (another algorithm or argon2 version) or
// [ErrMalformedHash].
func ParsePasswordHash(s string) (PasswordHash, error) {
	const form = "must have the form $argon2id$v=19$m=<KiB>,t=<iterations>,p=<parallelism>$<salt>$<key>"
	if s == "" {
		return PasswordHash{}, newError(fieldPasswordHash, ErrEmpty, "must not be empty")
	}
	if len(s) > maxPasswordHashBytes {
		return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, fmt.Sprintf("must be at most %d bytes long", maxPasswordHashBytes))
	}
	if s[0] != '$' {
		return PasswordHash{}, newError(fieldPasswordHash, ErrUnknownHashFormat, `is not a PHC string (it must start with "$argon2id$")`)
	}
	fields := strings.Split(s[1:], "$")
	if fields[0] != "argon2id" {
		return PasswordHash{}, newError(fieldPasswordHash, ErrUnknownHashFormat, fmt.Sprintf("algorithm %q is not supported, want argon2id", truncate(fields[0], 16)))
	}
	if len(fields) < 2 {
		return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, form)
	}
	v, ok := strings.CutPrefix(fields[1], "v=")
	if !ok {
		if strings.HasPrefix(fields[1], "m=") {
			return PasswordHash{}, newError(fieldPasswordHash, ErrUnknownHashFormat, `has no "v=" field, which means argon2 version 16 (0x10); only version 19 is supported`)
		}
		return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, form)
	}
	version, ok := parseDecimal(v)
	if !ok {
		return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, "version must be a decimal number")
	}
	if version != argon2.Version {
		return PasswordHash{}, newError(fieldPasswordHash, ErrUnknownHashFormat, fmt.Sprintf("argon2 version %d is not supported, want %d", version, argon2.Version))
	}
	if len(fields) != 5 {
		return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, form)
	}

	var p Argon2Params
	params := strings.Split(fields[2], ",")
	if len(params) != 3 {
		return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, `parameters must be "m=<KiB>,t=<iterations>,p=<parallelism>"`)
	}
	var parallelism uint32
	for i, dst := range []*uint32{&p.Memory, &p.Iterations, &parallelism} {
		name := "mtp"[i : i+1]
		val, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, `parameters must be "m=<KiB>,t=<iterations>,p=<parallelism>"`)
		}
		if *dst, ok = parseDecimal(val); !ok {
			return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, fmt.Sprintf("parameter %s must be a decimal number without sign or leading zeros", name))
		}
	}
	if parallelism < 1 || parallelism > 255 {
		return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, fmt.Sprintf("parallelism %d out of range [1, 255]", parallelism))
	}
	p.Parallelism = uint8(parallelism)

	salt, ok := decodeBase64(fields[3])
	if !ok {
		return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, "salt must be unpadded standard base64")
	}
	key, ok := decodeBase64(fields[4])
	if !ok {
		return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, "key must be unpadded standard base64")
	}
	p.SaltLength, p.KeyLength = uint32(len(salt)), uint32(len(key))
	if err := p.check(); err != nil {
		return PasswordHash{}, newError(fieldPasswordHash, ErrMalformedHash, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return PasswordHash{Params: p, Salt: salt, Key: key}, nil
}

// String returns the PHC string form; see [ParsePasswordHash].
func (h PasswordHash) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.Params.Memory, h.Params.Iterations, h.Params.Parallelism,
		base64.RawStdEncoding.EncodeToString(h.Salt), base64.RawStdEncoding.EncodeToString(h.Key))
}

// parseDecimal parses a uint32 written without sign or leading zeros.
func parseDecimal(s string) (uint32, bool) {
	if s == "" || len(s) > 10 || s[0] == '0' && len(s) > 1 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil
}

// decodeBase64 decodes canonical unpadded standard base64. The decoder
// alone would skip CR and LF and accept non-zero trailing bits; requiring
// the re-encoding to match rejects both.
func decodeBase64(s string) ([]byte, bool) {
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || base64.RawStdEncoding.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
