package valueobject_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/valueobject"
)

func TestParseEmailAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, local, domain string
	}{
		{"user@example.com", "user@example.com", "user", "example.com"},
		{"  user@example.com\n", "user@example.com", "user", "example.com"},
		{"User.Name@Example.COM", "User.Name@example.com", "User.Name", "example.com"},
		{"a.b+tag@mail.example.org", "a.b+tag@mail.example.org", "a.b+tag", "mail.example.org"},
		{"x@a.io", "x@a.io", "x", "a.io"},
		{"!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~@example.com", "!#$%&'*+-/=?^_`{|}~", "example.com"},
		{"user@xn--bcher-kva.example", "user@xn--bcher-kva.example", "user", "xn--bcher-kva.example"},
		{"user@my-host.3com.com", "user@my-host.3com.com", "user", "my-host.3com.com"},
		{"user@123.example", "user@123.example", "user", "123.example"},
		{strings.Repeat("l", 64) + "@example.com", strings.Repeat("l", 64) + "@example.com", strings.Repeat("l", 64), "example.com"},
		{"u@" + strings.Repeat("d", 63) + ".com", "u@" + strings.Repeat("d", 63) + ".com", "u", strings.Repeat("d", 63) + ".com"},
		{maxLenEmail(), maxLenEmail(), strings.Repeat("l", 64), maxLenEmail()[65:]},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			e, err := valueobject.ParseEmail(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, e.String())
			require.Equal(t, tt.local, e.Local())
			require.Equal(t, tt.domain, e.Domain())
			require.False(t, e.IsZero())
		})
	}
}

// maxLenEmail returns a valid address of exactly 254 bytes.
func maxLenEmail() string {
	// 64 + 1 + 63 + 1 + 63 + 1 + 61 = 254
	s := strings.Repeat("l", 64) + "@" + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 61)
	if len(s) != 254 {
		panic(len(s))
	}
	return s
}

func TestParseEmailRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		sentinel error
		reason   string
	}{
		{"empty", "", valueobject.ErrEmpty, "must not be empty"},
		{"only whitespace", " \t\n", valueobject.ErrEmpty, "must not be empty"},
		{"too long", maxLenEmail() + "c", valueobject.ErrTooLong, "must be at most 254 bytes long"},
		{"quoted local part", `"john doe"@example.com`, valueobject.ErrInvalid, "quoted local parts are not supported"},
		{"no at", "user.example.com", valueobject.ErrInvalid, `must contain exactly one "@"`},
		{"two ats", "user@host@example.com", valueobject.ErrInvalid, `must contain exactly one "@"`},
		{"empty local", "@example.com", valueobject.ErrInvalid, `must have a local part before the "@"`},
		{"local too long", strings.Repeat("l", 65) + "@example.com", valueobject.ErrTooLong, `local part before the "@" must be at most 64 bytes long`},
		{"local space", "john doe@example.com", valueobject.ErrInvalid, `local part contains invalid character ' '`},
		{"local comma", "a,b@example.com", valueobject.ErrInvalid, `local part contains invalid character ','`},
		{"local non-ASCII", "jöhn@example.com", valueobject.ErrInvalid, `local part contains invalid character 'ö'`},
		{"local invalid UTF-8", "a\xffb@example.com", valueobject.ErrInvalid, `local part contains invalid character byte 0xff`},
		{"local leading dot", ".user@example.com", valueobject.ErrInvalid, `local part must not start with "."`},
		{"local trailing dot", "user.@example.com", valueobject.ErrInvalid, `local part must not end with "."`},
		{"local double dot", "us..er@example.com", valueobject.ErrInvalid, `local part must not contain ".."`},
		{"empty domain", "user@", valueobject.ErrInvalid, `must have a domain after the "@"`},
		{"address literal", "user@[192.0.2.1]", valueobject.ErrInvalid, "address literals such as [192.0.2.1] are not supported, use a domain name"},
		{"domain underscore", "user@exa_mple.com", valueobject.ErrInvalid, `domain contains invalid character '_'`},
		{"domain non-ASCII", "user@bücher.example", valueobject.ErrInvalid, `domain contains invalid character 'ü'`},
		{"domain Kelvin sign", "user@\u212aelvin.example", valueobject.ErrInvalid, "domain contains invalid character '\u212a'"},
		{"domain leading dot", "user@.example.com", valueobject.ErrInvalid, `domain must not start with "."`},
		{"domain trailing dot", "user@example.com.", valueobject.ErrInvalid, `domain must not end with "."`},
		{"domain double dot", "user@example..com", valueobject.ErrInvalid, `domain must not contain ".."`},
		{"label too long", "user@" + strings.Repeat("d", 64) + ".com", valueobject.ErrTooLong, `domain label "` + strings.Repeat("d", 64) + `" must be at most 63 bytes long`},
		{"label leading hyphen", "user@-example.com", valueobject.ErrInvalid, `domain label "-example" must not start or end with "-"`},
		{"label trailing hyphen", "user@example-.com", valueobject.ErrInvalid, `domain label "example-" must not start or end with "-"`},
		{"single label", "user@localhost", valueobject.ErrInvalid, `domain must have at least two labels, such as "example.com"`},
		{"numeric TLD", "user@192.168.0.1", valueobject.ErrInvalid, `top-level domain "1" must not be all digits`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := valueobject.ParseEmail(tt.in)
			require.Error(t, err)
			require.True(t, e.IsZero())
			require.ErrorIs(t, err, tt.sentinel)
			var ve *valueobject.Error
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "email", ve.Field)
			require.Equal(t, tt.reason, ve.Reason)
			require.Equal(t, "valueobject: email: "+tt.reason, err.Error())
		})
	}
}

func TestEmailZero(t *testing.T) {
	t.Parallel()
	var e valueobject.Email
	require.True(t, e.IsZero())
	require.Empty(t, e.String())
	require.Empty(t, e.Local())
	require.Empty(t, e.Domain())
	text, err := e.MarshalText()
	require.NoError(t, err)
	require.Empty(t, text)
}

func TestEmailComparable(t *testing.T) {
	t.Parallel()
	a, err := valueobject.ParseEmail("User@EXAMPLE.com")
	require.NoError(t, err)
	b, err := valueobject.ParseEmail(" User@example.COM ")
	require.NoError(t, err)
	c, err := valueobject.ParseEmail("user@example.com")
	require.NoError(t, err)
	require.Equal(t, a, b)
	require.True(t, a == b)
	require.False(t, a == c, "the local part keeps its case")
}

func TestEmailJSON(t *testing.T) {
	t.Parallel()
	type req struct {
		Email valueobject.Email `json:"email"`
	}
	var r req
	require.NoError(t, json.Unmarshal([]byte(`{"email":" Someone@Example.ORG "}`), &r))
	require.Equal(t, "Someone@example.org", r.Email.String())

	out, err := json.Marshal(r)
	require.NoError(t, err)
	require.JSONEq(t, `{"email":"Someone@example.org"}`, string(out))

	for _, in := range []string{`{"email":"not an email"}`, `{"email":""}`} {
		err = json.Unmarshal([]byte(in), &r)
		var ve *valueobject.Error
		require.True(t, errors.As(err, &ve), "%s: %v", in, err)
		require.Equal(t, "email", ve.Field)
	}
	require.Equal(t, "Someone@example.org", r.Email.String(), "a failed unmarshal leaves the value alone")
}

func FuzzParseEmail(f *testing.F) {
	for _, s := range []string{
		"user@example.com", " User.Name+tag@Mail.Example.COM ", "a@b.c", "@", "a@", "@b.c",
		`"quoted"@example.com`, "a..b@example.com", "a@-b.com", "a@b-.com", "a@b..com", "a@[1.2.3.4]",
		"a@192.168.0.1", "a@localhost", "jöhn@example.com", "a@\u212a.com", "a@b@c.com", "\xff@a.com",
		maxLenEmail(), maxLenEmail() + "x", strings.Repeat("l", 65) + "@example.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := valueobject.ParseEmail(s)
		if err != nil {
			var ve *valueobject.Error
			if !errors.As(err, &ve) || ve.Field != "email" || ve.Reason == "" || ve.Err == nil {
				t.Fatalf("ParseEmail(%q): error %v is not a complete *Error", s, err)
			}
			if !e.IsZero() {
				t.Fatalf("ParseEmail(%q) failed but returned %q", s, e)
			}
			return
		}
		str := e.String()
		if len(str) > 254 || len(e.Local()) > 64 || e.Local() == "" {
			t.Fatalf("ParseEmail(%q) = %q: length limits broken", s, str)
		}
		if e.Local()+"@"+e.Domain() != str {
			t.Fatalf("ParseEmail(%q) = %q: local %q, domain %q", s, str, e.Local(), e.Domain())
		}
		if e.Domain() != strings.ToLower(e.Domain()) {
			t.Fatalf("ParseEmail(%q): domain %q is not lower case", s, e.Domain())
		}
		for i := 0; i < len(str); i++ {
			if str[i] <= ' ' || str[i] >= 0x7f {
				t.Fatalf("ParseEmail(%q) = %q: contains byte 0x%02x", s, str, str[i])
			}
		}
		again, err := valueobject.ParseEmail(str)
		if err != nil || again != e {
			t.Fatalf("ParseEmail(%q) = %q, which re-parses to %q, %v", s, str, again, err)
		}
		text, err := e.MarshalText()
		if err != nil || string(text) != str {
			t.Fatalf("MarshalText of %q = %q, %v", str, text, err)
		}
	})
}
