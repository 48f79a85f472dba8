package valueobject

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
	"unicode/utf8"
)

const fieldPassword = "password"

// Password length limits of [DefaultPasswordPolicy], in characters.
const (
	defaultPasswordMin = 8
	defaultPasswordMax = 128
)

// redacted is what every textual form of a [Password] shows.
const redacted = "[REDACTED]"

// errPasswordMarshal is returned by [Password.MarshalText].
var errPasswordMarshal = errors.New("valueobject: a Password is never serialized; store the result of Hasher.Hash instead")

// Password is a plain-text password that passed a [PasswordPolicy]. It
// exists only between the HTTP request and [Hasher.Hash]: never store it,
// put it in an event or log it.
//
// To make leaking it hard, Password never shows its text: String, GoString,
// every fmt verb (%v, %+v, %#v, %s, %q, %x) and slog print "[REDACTED]",
// also when the Password is a field of a struct being printed, and
// MarshalText (so encoding/json) fails. [Password.Reveal] returns the text,
// for hashing.
//
// Passwords are not comparable with ==; compare hashes with
// [Hasher.Verify].
type Password struct {
	// A pointer, so that fmt printing a struct that holds a Password in an
	// unexported field (where fmt cannot call methods) shows an address,
	// not the text.
	p *string
}

// PasswordPolicy decides which passwords are acceptable. It follows NIST SP
// 800-63B: a minimum and a maximum length, no composition rules ("one
// digit, one symbol"), and a check against passwords that are trivial to
// guess. A policy rejects:
//
//   - the empty password ([ErrEmpty]);
//   - text that is not valid UTF-8 or contains control characters
//     ([ErrInvalid]);
//   - fewer than MinLength or more than MaxLength characters ([ErrTooShort],
//     [ErrTooLong]);
//   - one character repeated ("aaaaaaaa"), an ascending or descending run
//     of letters or digits ("abcdefgh", "87654321") or of a keyboard row
//     ("qwertyui", "lkjhgfds"), a password from a built-in list of about
//     sixty of the most common ones ("password", "iloveyou", "1q2w3e4r"),
//     one of Banned, or one of the personal strings passed to
//     [PasswordPolicy.Validate], such as the email address and its local
//     part ([ErrWeakPassword]).
//
// Length is counted in characters (Unicode code points), not bytes, so
// "pässwörd" has 8. Comparisons with the lists and the personal strings
// ignore case. Passwords are not trimmed or normalized: " secret " keeps its
// spaces, and a password typed with a different Unicode normalization will
// not match at login.
//
// The zero PasswordPolicy is [DefaultPasswordPolicy].
type PasswordPolicy struct {
	// MinLength is the minimum number of characters; zero or less means 8.
	MinLength int
	// MaxLength is the maximum number of characters; zero or less means
	// 128. It bounds the work and memory spent on hostile input.
	MaxLength int
	// Banned lists further passwords to reject, such as the product name;
	// compared ignoring case.
	Banned []string
}

// DefaultPasswordPolicy accepts 8 to 128 characters and rejects the trivial
// passwords described at [PasswordPolicy].
var DefaultPasswordPolicy = PasswordPolicy{MinLength: defaultPasswordMin, MaxLength: defaultPasswordMax}

// NewPassword validates plain with [DefaultPasswordPolicy]; see
// [PasswordPolicy.New].
func NewPassword(plain string, personal ...string) (Password, error) {
	return DefaultPasswordPolicy.New(plain, personal...)
}

// New returns plain as a [Password] when [PasswordPolicy.Validate] accepts
// it.
func (p PasswordPolicy) New(plain string, personal ...string) (Password, error) {
	if err := p.Validate(plain, personal...); err != nil {
		return Password{}, err
	}
	return Password{p: &plain}, nil
}

// Validate reports whether plain is acceptable under the policy. personal
// holds strings the password must not equal, ignoring case: typically the
// user's email address, its local part and the user name. Empty personal
// strings are ignored.
//
// The error is an [*Error] with Field "password"; see [PasswordPolicy] for
// the sentinels.
func (p PasswordPolicy) Validate(plain string, personal ...string) error {
	minLen, maxLen := p.MinLength, p.MaxLength
	if minLen <= 0 {
		minLen = defaultPasswordMin
	}
	if maxLen <= 0 {
		maxLen = defaultPasswordMax
	}
	if plain == "" {
		return newError(fieldPassword, ErrEmpty, "must not be empty")
	}
	// Bound the work before anything that is linear in the input: a
	// character takes at most 4 bytes. (Divided, not multiplied, so that a
	// huge MaxLength cannot overflow.)
	if len(plain)/4 > maxLen {
		return newError(fieldPassword, ErrTooLong, fmt.Sprintf("must be at most %d characters long", maxLen))
	}
	if !utf8.ValidString(plain) {
		return newError(fieldPassword, ErrInvalid, "must be valid UTF-8 text")
	}
	n := utf8.RuneCountInString(plain)
	switch {
	case n < minLen:
		return newError(fieldPassword, ErrTooShort, fmt.Sprintf("must be at least %d characters long", minLen))
	case n > maxLen:
		return newError(fieldPassword, ErrTooLong, fmt.Sprintf("must be at most %d characters long", maxLen))
	}
	if strings.ContainsFunc(plain, unicode.IsControl) {
		return newError(fieldPassword, ErrInvalid, "must not contain control characters")
	}

	lower := strings.ToLower(plain)
	switch {
	case isRepeated(lower):
		return newError(fieldPassword, ErrWeakPassword, "must not be a single repeated character")
	case isSequence(lower):
		return newError(fieldPassword, ErrWeakPassword, `must not be a simple sequence such as "abcdefgh", "87654321" or "qwertyui"`)
	case commonPasswords[lower] || containsFold(p.Banned, plain):
		return newError(fieldPassword, ErrWeakPassword, "is too common and easy to guess")
	case containsFold(personal, plain):
		return newError(fieldPassword, ErrWeakPassword, "must not be the same as the email address or user name")
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if v != "" && strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// isRepeated reports whether s, of at least two characters, is one
// character repeated.
func isRepeated(s string) bool {
	first, size := utf8.DecodeRuneInString(s)
	if size == len(s) {
		return false
	}
	for _, r := range s[size:] {
		if r != first {
			return false
		}
	}
	return true
}

// keyboardRows are runs of adjacent keys on common layouts (QWERTY,
// QWERTZ, AZERTY), lower-cased.
var keyboardRows = []string{
	"1234567890",
	"qwertyuiop", "asdfghjkl", "zxcvbnm",
	"qwertzuiop", "yxcvbnm",
	"azertyuiop", "qsdfghjklm", "wxcvbn",
}

// isSequence reports whether the lower-cased s, of at least three
// characters, is one ascending or descending run: of code points
// ("abcdefgh", "98765432") or along a keyboard row ("qwertyui", "poiuytre").
func isSequence(s string) bool {
	if utf8.RuneCountInString(s) < 3 {
		return false
	}
	if isCodePointRun(s, +1) || isCodePointRun(s, -1) {
		return true
	}
	for _, row := range keyboardRows {
		if strings.Contains(row, s) || strings.Contains(row, reverse(s)) {
			return true
		}
	}
	return false
}

func isCodePointRun(s string, step rune) bool {
	prev := rune(-1)
	for i, r := range s {
		if i > 0 && r != prev+step {
			return false
		}
		prev = r
	}
	return true
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// commonPasswords are some of the most used passwords of the public breach
// corpora, lower-cased. Those shorter than the default minimum of 8 matter
// only for policies with a smaller MinLength. The list is a floor,
// not a breach check; a service that wants one should also ask a
// breached-password service before calling [Hasher.Hash].
var commonPasswords = map[string]bool{
	"123456": true, "1234567": true, "12345678": true, "123456789": true, "1234567890": true,
	"123123123": true, "11111111": true, "00000000": true, "87654321": true, "123qweasd": true,
	"password": true, "password1": true, "password12": true, "password123": true, "passw0rd": true, "p@ssw0rd": true, "p@ssword": true,
	"qwerty": true, "qwerty123": true, "qwertyuiop": true, "qwerty12345": true, "qazwsx": true, "qazwsxedc": true,
	"1q2w3e4r": true, "1q2w3e4r5t": true, "1qaz2wsx": true, "zaq12wsx": true, "q1w2e3r4": true, "q1w2e3r4t5": true,
	"abc123": true, "abc12345": true, "abcd1234": true, "aa123456": true, "a1b2c3d4": true,
	"iloveyou": true, "iloveyou1": true, "sunshine": true, "princess": true, "football": true, "baseball": true,
	"superman": true, "starwars": true, "whatever": true, "trustno1": true, "letmein": true, "letmein1": true,
	"welcome": true, "welcome1": true, "welcome123": true, "admin": true, "admin123": true, "administrator": true,
	"changeme": true, "secret123": true, "monkey123": true, "dragon123": true, "master123": true, "computer": true,
	"michelle": true, "jennifer": true, "shadow123": true, "football1": true, "mustang1": true,
}

// Reveal returns the password text. Call it only to hash the password.
func (pw Password) Reveal() string {
	if pw.p == nil {
		return ""
	}
	return *pw.p
}

// IsZero reports whether pw is the zero Password, which no successful
// validation returns.
func (pw Password) IsZero() bool { return pw.p == nil }

// String returns "[REDACTED]".
func (pw Password) String() string { return redacted }

// GoString returns "valueobject.Password([REDACTED])".
func (pw Password) GoString() string { return "valueobject.Password(" + redacted + ")" }

// Format implements [fmt.Formatter]: every verb prints "[REDACTED]", %#v
// prints [Password.GoString].
func (pw Password) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(pw.GoString()))
		return
	}
	_, _ = f.Write([]byte(redacted))
}

// LogValue implements [slog.LogValuer]: log records show "[REDACTED]".
func (pw Password) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements [encoding.TextMarshaler] by failing: a Password
// must not end up in JSON, an event or a database row. Marshal a hash from
// [Hasher.Hash] instead.
func (pw Password) MarshalText() ([]byte, error) { return nil, errPasswordMarshal }
