package valueobject

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Length limits of an email address, in bytes (RFC 5321, section 4.5.3.1,
// with the 254-byte path limit of RFC 3696 erratum 1690).
const (
	maxEmailLen      = 254
	maxEmailLocalLen = 64
	maxDomainLabel   = 63
)

const fieldEmail = "email"

// Email is a syntactically valid email address: local@domain with a
// dot-atom local part and a lower-cased DNS host name as domain. Create it
// with [ParseEmail]; the zero Email is not a valid address and reports
// [Email.IsZero].
//
// Two Emails are equal (==) when their text is equal. The domain is
// lower-cased by the parser, the local part is kept as written: RFC 5321
// leaves its case to the receiving server, and in practice a service that
// wants case-insensitive sign-in should compare strings.ToLower(e.String()).
//
// Email says nothing about whether the address exists or accepts mail; only
// sending a confirmation message can tell.
type Email struct {
	s  string // local + "@" + domain
	at int    // index of the "@" in s
}

// ParseEmail parses a practical subset of the RFC 5322 addr-spec: the form
// that sign-up forms see and mail systems deliver to.
//
// Surrounding whitespace is trimmed. What remains must be at most 254 bytes
// and contain exactly one "@". The local part before it is 1 to 64 bytes of
// dot-atom text: ASCII letters, digits and !#$%&'*+-/=?^_`{|}~, with dots
// between them but not at the start, the end or twice in a row. Quoted local
// parts ("john doe"@example.com) and comments are rejected, and so are
// non-ASCII characters: internationalized domains must be given in their
// ASCII (punycode, "xn--") form. The domain is a host name of at least two
// dot-separated labels, each 1 to 63 letters, digits and hyphens, not
// starting or ending with a hyphen; the last label is not all digits (so
// that "user@192.168.0.1" is rejected), and address literals such as
// "[192.0.2.1]" are not supported. The domain is lower-cased.
//
// Errors are [*Error] with Field "email" wrapping [ErrEmpty], [ErrTooLong]
// or [ErrInvalid]; each failure has its own Reason.
func ParseEmail(s string) (Email, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Email{}, newError(fieldEmail, ErrEmpty, "must not be empty")
	}
	if len(s) > maxEmailLen {
		return Email{}, newError(fieldEmail, ErrTooLong, fmt.Sprintf("must be at most %d bytes long", maxEmailLen))
	}
	if s[0] == '"' {
		return Email{}, newError(fieldEmail, ErrInvalid, "quoted local parts are not supported")
	}
	at := strings.IndexByte(s, '@')
	if at < 0 || strings.IndexByte(s[at+1:], '@') >= 0 {
		return Email{}, newError(fieldEmail, ErrInvalid, `must contain exactly one "@"`)
	}
	local, domain := s[:at], s[at+1:]
	if err := checkLocal(local); err != nil {
		return Email{}, err
	}
	if err := checkDomain(domain); err != nil {
		return Email{}, err
	}
	// Lower-case only now: checkDomain admits ASCII only, and
	// strings.ToLower would map some non-ASCII letters (the Kelvin sign
	// U+212A) to ASCII ones.
	domain = strings.ToLower(domain)
	return Email{s: local + "@" + domain, at: at}, nil
}

func checkLocal(local string) error {
	switch {
	case local == "":
		return newError(fieldEmail, ErrInvalid, `must have a local part before the "@"`)
	case len(local) > maxEmailLocalLen:
		return newError(fieldEmail, ErrTooLong, fmt.Sprintf(`local part before the "@" must be at most %d bytes long`, maxEmailLocalLen))
	}
	for i := 0; i < len(local); i++ {
		if c := local[i]; c != '.' && !isAtext(c) {
			return newError(fieldEmail, ErrInvalid, "local part contains invalid character "+quoteCharAt(local, i))
		}
	}
	switch {
	case local[0] == '.':
		return newError(fieldEmail, ErrInvalid, `local part must not start with "."`)
	case local[len(local)-1] == '.':
		return newError(fieldEmail, ErrInvalid, `local part must not end with "."`)
	case strings.Contains(local, ".."):
		return newError(fieldEmail, ErrInvalid, `local part must not contain ".."`)
	}
	return nil
}

// checkDomain checks the domain as written (any case).
func checkDomain(domain string) error {
	switch {
	case domain == "":
		return newError(fieldEmail, ErrInvalid, `must have a domain after the "@"`)
	case domain[0] == '[':
		return newError(fieldEmail, ErrInvalid, "address literals such as [192.0.2.1] are not supported, use a domain name")
	}
	for i := 0; i < len(domain); i++ {
		if c := domain[i]; c != '.' && c != '-' && !isAlnum(c) {
			return newError(fieldEmail, ErrInvalid, "domain contains invalid character "+quoteCharAt(domain, i))
		}
	}
	switch {
	case domain[0] == '.':
		return newError(fieldEmail, ErrInvalid, `domain must not start with "."`)
	case domain[len(domain)-1] == '.':
		return newError(fieldEmail, ErrInvalid, `domain must not end with "."`)
	case strings.Contains(domain, ".."):
		return newError(fieldEmail, ErrInvalid, `domain must not contain ".."`)
	}
	labels := 0
	last := ""
	for label := range strings.SplitSeq(domain, ".") {
		labels++
		last = label
		switch {
		case len(label) > maxDomainLabel:
			return newError(fieldEmail, ErrTooLong, fmt.Sprintf("domain label %q must be at most %d bytes long", label, maxDomainLabel))
		case label[0] == '-' || label[len(label)-1] == '-':
			return newError(fieldEmail, ErrInvalid, fmt.Sprintf("domain label %q must not start or end with %q", label, "-"))
		}
	}
	if labels < 2 {
		return newError(fieldEmail, ErrInvalid, `domain must have at least two labels, such as "example.com"`)
	}
	if strings.Trim(last, "0123456789") == "" {
		return newError(fieldEmail, ErrInvalid, fmt.Sprintf("top-level domain %q must not be all digits", last))
	}
	return nil
}

// isAtext reports whether c is an RFC 5322 atext character.
func isAtext(c byte) bool {
	return isAlnum(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// quoteCharAt quotes the character starting at byte i of s for an error
// message: the whole UTF-8 sequence when it is one, else the byte.
func quoteCharAt(s string, i int) string {
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && size <= 1 {
		return fmt.Sprintf("byte 0x%02x", s[i])
	}
	return fmt.Sprintf("%q", r)
}

// String returns the address as local@domain, or "" for the zero Email.
func (e Email) String() string { return e.s }

// Local returns the part before the "@", as written.
func (e Email) Local() string { return e.s[:e.at] }

// Domain returns the lower-cased part after the "@".
func (e Email) Domain() string {
	if e.s == "" {
		return ""
	}
	return e.s[e.at+1:]
}

// IsZero reports whether e is the zero Email, which no successful parse
// returns.
func (e Email) IsZero() bool { return e.s == "" }

// MarshalText implements [encoding.TextMarshaler]. The zero Email marshals
// to empty text.
func (e Email) MarshalText() ([]byte, error) { return []byte(e.s), nil }

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParseEmail], so
// decoding JSON into a struct with an Email field validates it. Empty text
// is rejected with [ErrEmpty]; use a *Email field for an optional address.
func (e *Email) UnmarshalText(text []byte) error {
	v, err := ParseEmail(string(text))
	if err != nil {
		return err
	}
	*e = v
	return nil
}
