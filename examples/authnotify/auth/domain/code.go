package domain

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math/big"
	"time"
)

// The rules of one-time verification codes.
const (
	// CodeDigits is the length of a code: six decimal digits.
	CodeDigits = 6
	// CodeTTL is how long a code works after it was issued.
	CodeTTL = 10 * time.Minute
	// MaxCodeAttempts is how many wrong tries a code survives.
	MaxCodeAttempts = 5
	// CodeResendInterval is the least time between two codes for one user.
	CodeResendInterval = 60 * time.Second
)

// CodeGenerator returns a new plain code of [CodeDigits] decimal digits.
// [RandomCode] is the production one; tests inject a predictable one.
type CodeGenerator func() (string, error)

// RandomCode returns a uniformly random code of [CodeDigits] digits from
// crypto/rand, with leading zeros.
func RandomCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("auth: generate code: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// TokenGenerator returns a new plain registration token: an opaque,
// unguessable string. [RandomRegistrationToken] is the production one.
type TokenGenerator func() (string, error)

// MaxRegistrationTokenLength bounds the registration tokens accepted as
// input; RandomRegistrationToken's are 26 characters.
const MaxRegistrationTokenLength = 64

// RandomRegistrationToken returns 26 characters of base32 from crypto/rand
// (130 bits).
func RandomRegistrationToken() (string, error) { return rand.Text(), nil }

// CodeSealer encrypts a plain code for the event that carries it to the
// notification module. The user ID is passed as associated data, so the
// sealed code opens only for that user. *fieldcrypt.Cipher implements it.
type CodeSealer interface {
	Seal(plaintext, associatedData string) (string, error)
}

// IsCode reports whether s has the form of a code: exactly [CodeDigits]
// ASCII digits.
func IsCode(s string) bool {
	if len(s) != CodeDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// otp is the state of the user's current code. The plain code is never
// kept; hash is HMAC-SHA256 under the factory's code key.
type otp struct {
	hash      []byte // nil: no live code
	issuedAt  time.Time
	expiresAt time.Time
	failures  int
}

// hashCode binds the code to the user: the same code of two users hashes
// differently, and without the key a stolen hash cannot be brute-forced
// over the million possible codes.
func hashCode(key []byte, userID, code string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("authnotify/otp/v1\x00"))
	m.Write([]byte(userID))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// hashRegistrationToken is hashCode for registration tokens, under a
// label of its own so that a token and a code never share a hash.
func hashRegistrationToken(key []byte, userID, token string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("authnotify/registration/v1\x00"))
	m.Write([]byte(userID))
	m.Write([]byte{0})
	m.Write([]byte(token))
	return m.Sum(nil)
}

// hashResetCode is hashCode for password reset codes, under a label of its
// own so that a verification code never passes as a reset code.
func hashResetCode(key []byte, userID, code string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("authnotify/reset/v1\x00"))
	m.Write([]byte(userID))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}
