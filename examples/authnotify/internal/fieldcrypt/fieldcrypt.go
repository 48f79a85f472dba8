// Package fieldcrypt encrypts single fields of events with AES-256-GCM, so
// that a secret that must travel inside an event (the one-time code of the
// auth module) is never readable in the outbox table, on the Kafka topic or
// in a job row.
//
// It is the example's shared kernel: the auth module seals, the
// notification module opens, and neither imports the other. Both get the
// same [Cipher], built from one key in configuration
// (FIELD_ENCRYPTION_KEY).
//
// # Format
//
// [Cipher.Seal] returns "v2.", the ID of the sealing key, "." and the
// unpadded base64url encoding of nonce ‖ ciphertext ‖ tag, with a fresh
// random 12-byte nonce per call. A key without an ID seals in the older
// form "v1." followed by the same encoding; [Cipher.Open] reads both, and
// tries every key on a "v1." field.
// The associated data given to Seal must be given to Open again: the auth
// module passes the user ID, so a sealed code copied into another user's
// event does not open.
//
// A random 96-bit nonce is safe for about 2³² seals under one key (NIST SP
// 800-38D); rotate the key well before that.
package fieldcrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the key length in bytes: AES-256.
const KeySize = 32

const (
	prefix    = "v1."
	prefixV2  = "v2."
	nonceSize = 12
	tagSize   = 16
	// maxSealed bounds what Open decodes; fields are short secrets.
	maxSealed = 64 << 10
)

// ErrDecrypt is returned by [Cipher.Open] for text that is not a sealed
// field, was sealed with another key or other associated data, or was
// tampered with. The reasons are not told apart on purpose.
var ErrDecrypt = errors.New("fieldcrypt: cannot decrypt field")

// MinDistinctBytes is the least number of distinct byte values a key
// given to [ParseKey] must have. 32 random bytes have about 30; a key of
// repeated characters or patterns ("abab…", "0123…0123…") has far fewer.
const MinDistinctBytes = 16

// Key is one key of a [Cipher] with its ID, written into every field it
// seals so that Open knows which key to use. ID is 1 to 32 of
// [A-Za-z0-9_-], or empty for the unnamed single key.
type Key struct {
	ID     string
	Secret []byte
}

// Cipher seals and opens fields with AES-256-GCM. It is safe for concurrent
// use.
type Cipher struct {
	keys []ringKey // keys[0] seals
}

type ringKey struct {
	id   string
	aead cipher.AEAD
	key  []byte
}

// New returns a Cipher for a key of exactly [KeySize] bytes, without an ID.
func New(key []byte) (*Cipher, error) {
	return NewRing([]Key{{Secret: key}})
}

// NewRing returns a Cipher that seals with keys[0] and opens with any of
// keys. Every key is [KeySize] bytes; IDs are unique, and only a ring of
// one key may have a key without an ID.
func NewRing(keys []Key) (*Cipher, error) {
	if len(keys) == 0 {
		return nil, errors.New("fieldcrypt: no key")
	}
	c := &Cipher{}
	seen := map[string]bool{}
	for i, k := range keys {
		if len(k.Secret) != KeySize {
			return nil, fmt.Errorf("fieldcrypt: key must be %d bytes, got %d", KeySize, len(k.Secret))
		}
		if k.ID == "" && len(keys) > 1 {
			return nil, fmt.Errorf("fieldcrypt: key %d has no ID; with several keys every key needs one", i+1)
		}
		if k.ID != "" && !validID(k.ID) {
			return nil, fmt.Errorf("fieldcrypt: key ID %q must be 1 to 32 of A-Z a-z 0-9 _ -", k.ID)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("fieldcrypt: key ID %q appears twice", k.ID)
		}
		seen[k.ID] = true
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("fieldcrypt: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("fieldcrypt: %w", err)
		}
		c.keys = append(c.keys, ringKey{id: k.ID, aead: aead, key: append([]byte(nil), k.Secret...)})
	}
	return c, nil
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > 32 {
		return false
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return true
}

// ParseKeys reads FIELD_ENCRYPTION_KEY: either one key in a form
// [ParseKey] reads (no ID), or a comma-separated list of ID:KEY entries,
// the sealing key first, e.g. "2026-11:NEWKEY,2026-05:OLDKEY". A single
// ID:KEY entry is allowed too.
func ParseKeys(s string) ([]Key, error) {
	s = strings.TrimSpace(s)
	if !strings.ContainsAny(s, ":,") {
		secret, err := ParseKey(s)
		if err != nil {
			return nil, err
		}
		return []Key{{Secret: secret}}, nil
	}
	var keys []Key
	for i, entry := range strings.Split(s, ",") {
		id, key, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok {
			return nil, fmt.Errorf("fieldcrypt: entry %d is not ID:KEY", i+1)
		}
		id = strings.TrimSpace(id)
		if !validID(id) {
			return nil, fmt.Errorf("fieldcrypt: entry %d: key ID %q must be 1 to 32 of A-Z a-z 0-9 _ -", i+1, id)
		}
		secret, err := ParseKey(key)
		if err != nil {
			return nil, fmt.Errorf("entry %d (%s): %w", i+1, id, err)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if _, err := NewRing(keys); err != nil {
		return nil, err
	}
	return keys, nil
}

// ParseKey decodes a key written as 64 hex digits or as base64 (standard
// or URL alphabet, padded or not) of 32 bytes: the forms
// FIELD_ENCRYPTION_KEY accepts. Surrounding whitespace is ignored. A key
// with fewer than [MinDistinctBytes] distinct byte values is refused as
// not random.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("fieldcrypt: key is empty")
	}
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return checkEntropy(b)
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("fieldcrypt: key must decode to %d bytes, got %d", KeySize, len(b))
			}
			return checkEntropy(b)
		}
	}
	return nil, fmt.Errorf("fieldcrypt: key must be %d bytes as 64 hex digits or base64", KeySize)
}

// checkEntropy refuses keys that are plainly not random: too few distinct
// byte values. It cannot prove a key random, only catch the typed ones.
func checkEntropy(b []byte) ([]byte, error) {
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	if n < MinDistinctBytes {
		return nil, fmt.Errorf("fieldcrypt: key has too little entropy (%d distinct byte values of %d, a random key has about 30); generate one with: openssl rand -hex 32", n, len(b))
	}
	return b, nil
}

// GenerateKey returns a new random key, base64-encoded, in the form
// [ParseKey] reads. Embedded mode uses it when no key is configured.
func GenerateKey() string {
	key := make([]byte, KeySize)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+).
	return base64.StdEncoding.EncodeToString(key)
}

// Seal encrypts plaintext, binding it to associatedData, and returns the
// sealed text described in the package documentation. The error is for
// interfaces that may fail (a KMS); this implementation never fails.
func (c *Cipher) Seal(plaintext, associatedData string) (string, error) {
	buf := make([]byte, nonceSize, nonceSize+len(plaintext)+tagSize)
	_, _ = rand.Read(buf) // crypto/rand.Read never fails (Go 1.24+).
	k := c.keys[0]
	buf = k.aead.Seal(buf, buf[:nonceSize], []byte(plaintext), []byte(associatedData))
	if k.id == "" {
		return prefix + base64.RawURLEncoding.EncodeToString(buf), nil
	}
	return prefixV2 + k.id + "." + base64.RawURLEncoding.EncodeToString(buf), nil
}

// Open decrypts text made by [Cipher.Seal] with the same key and
// associatedData by any of the cipher's keys. Anything else gives
// [ErrDecrypt].
func (c *Cipher) Open(sealed, associatedData string) (string, error) {
	if len(sealed) > maxSealed {
		return "", ErrDecrypt
	}
	candidates := c.keys // "v1.": any key may have sealed it
	body, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		rest, ok := strings.CutPrefix(sealed, prefixV2)
		if !ok {
			return "", ErrDecrypt
		}
		id, b, ok := strings.Cut(rest, ".")
		if !ok {
			return "", ErrDecrypt
		}
		body, candidates = b, nil
		for _, k := range c.keys {
			if k.id != "" && k.id == id {
				candidates = []ringKey{k}
			}
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < nonceSize+tagSize {
		return "", ErrDecrypt
	}
	for _, k := range candidates {
		if plain, err := k.aead.Open(nil, raw[:nonceSize], raw[nonceSize:], []byte(associatedData)); err == nil {
			return string(plain), nil
		}
	}
	return "", ErrDecrypt
}

// DeriveKey returns a 32-byte key for another purpose, derived from the
// cipher's sealing (first) key with HKDF-SHA256 (RFC 5869) and purpose as
// info, so that one configured secret serves several uses without reusing
// a key: the auth module's code hashes use
// DeriveKey("authnotify/otp-hash/v1"). It changes when the sealing key
// does.
func (c *Cipher) DeriveKey(purpose string) []byte { return c.DeriveKeys(purpose)[0] }

// DeriveKeys returns the key [DeriveKey] gives for every key of the ring,
// in the ring's order: the first for new values, the others to check
// values made before the sealing key rotated (a one-time code hashed a
// minute before the switch still verifies after it).
func (c *Cipher) DeriveKeys(purpose string) [][]byte {
	out := make([][]byte, len(c.keys))
	for i, rk := range c.keys {
		k, err := hkdf.Key(sha256.New, rk.key, nil, purpose, KeySize)
		if err != nil { // unreachable: HKDF fails only for lengths above 255·32 bytes
			panic(err)
		}
		out[i] = k
	}
	return out
}
