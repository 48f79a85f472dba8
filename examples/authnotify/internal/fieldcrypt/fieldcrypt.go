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
// [Cipher.Seal] returns "v1." followed by the unpadded base64url encoding
// of nonce ‖ ciphertext ‖ tag, with a fresh random 12-byte nonce per call.
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
	nonceSize = 12
	tagSize   = 16
	// maxSealed bounds what Open decodes; fields are short secrets.
	maxSealed = 64 << 10
)

// ErrDecrypt is returned by [Cipher.Open] for text that is not a sealed
// field, was sealed with another key or other associated data, or was
// tampered with. The reasons are not told apart on purpose.
var ErrDecrypt = errors.New("fieldcrypt: cannot decrypt field")

// Cipher seals and opens fields with AES-256-GCM. It is safe for concurrent
// use.
type Cipher struct {
	aead cipher.AEAD
	key  []byte
}

// New returns a Cipher for a key of exactly [KeySize] bytes.
func New(key []byte) (*Cipher, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("fieldcrypt: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("fieldcrypt: %w", err)
	}
	return &Cipher{aead: aead, key: append([]byte(nil), key...)}, nil
}

// ParseKey decodes a key written as 64 hex digits or as base64 (standard
// or URL alphabet, padded or not) of 32 bytes: the forms
// FIELD_ENCRYPTION_KEY accepts. Surrounding whitespace is ignored.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("fieldcrypt: key is empty")
	}
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("fieldcrypt: key must decode to %d bytes, got %d", KeySize, len(b))
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("fieldcrypt: key must be %d bytes as 64 hex digits or base64", KeySize)
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
	buf = c.aead.Seal(buf, buf[:nonceSize], []byte(plaintext), []byte(associatedData))
	return prefix + base64.RawURLEncoding.EncodeToString(buf), nil
}

// Open decrypts text made by [Cipher.Seal] with the same key and
// associatedData. Anything else gives [ErrDecrypt].
func (c *Cipher) Open(sealed, associatedData string) (string, error) {
	body, ok := strings.CutPrefix(sealed, prefix)
	if !ok || len(body) > maxSealed {
		return "", ErrDecrypt
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(raw) < nonceSize+tagSize {
		return "", ErrDecrypt
	}
	plain, err := c.aead.Open(nil, raw[:nonceSize], raw[nonceSize:], []byte(associatedData))
	if err != nil {
		return "", ErrDecrypt
	}
	return string(plain), nil
}

// DeriveKey returns a 32-byte key for another purpose, derived from the
// cipher's key with HKDF-SHA256 (RFC 5869) and purpose as info, so that one
// configured secret serves several uses without reusing a key: the auth
// module's code hashes use DeriveKey("authnotify/otp-hash/v1").
func (c *Cipher) DeriveKey(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, c.key, nil, purpose, KeySize)
	if err != nil { // unreachable: HKDF fails only for lengths above 255·32 bytes
		panic(err)
	}
	return k
}
