package valueobject_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"

	"github.com/dddkit/dddkit/valueobject"
)

// fastParams keep tests quick: 64 KiB and one pass instead of 19 MiB and
// two.
var fastParams = valueobject.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// setupHasher returns a Hasher with fastParams and a valid password.
func setupHasher(t *testing.T) (*valueobject.Hasher, valueobject.Password) {
	t.Helper()
	h, err := valueobject.NewHasher(&fastParams)
	require.NoError(t, err)
	pw, err := valueobject.NewPassword("correct horse battery staple")
	require.NoError(t, err)
	return h, pw
}

func TestHasherDefaults(t *testing.T) {
	t.Parallel()
	h, err := valueobject.NewHasher(nil)
	require.NoError(t, err)
	require.Equal(t, valueobject.DefaultArgon2Params, h.Params())
	require.Equal(t, valueobject.Argon2Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}, h.Params())

	pw, err := valueobject.NewPassword("correct horse battery staple")
	require.NoError(t, err)
	hash, err := h.Hash(pw)
	require.NoError(t, err)
	require.Regexp(t, `^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, hash)

	require.NoError(t, h.Verify(hash, "correct horse battery staple"))
	require.ErrorIs(t, h.Verify(hash, "correct horse battery stapler"), valueobject.ErrPasswordMismatch)
	require.False(t, h.NeedsRehash(hash))

	var zero valueobject.Hasher
	require.Equal(t, h.Params(), zero.Params(), "the zero Hasher uses the defaults")
	require.NoError(t, zero.Verify(hash, "correct horse battery staple"))
	require.False(t, zero.NeedsRehash(hash))
}

func TestHashVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	h, pw := setupHasher(t)
	a, err := h.Hash(pw)
	require.NoError(t, err)
	b, err := h.Hash(pw)
	require.NoError(t, err)
	require.NotEqual(t, a, b, "every hash has its own salt")
	require.True(t, strings.HasPrefix(a, "$argon2id$v=19$m=64,t=1,p=1$"), a)
	require.NotContains(t, a, pw.Reveal())

	for _, hash := range []string{a, b} {
		require.NoError(t, h.Verify(hash, pw.Reveal()))
	}
}

func TestHashZeroPassword(t *testing.T) {
	t.Parallel()
	h, _ := setupHasher(t)
	hash, err := h.Hash(valueobject.Password{})
	require.Empty(t, hash)
	require.ErrorIs(t, err, valueobject.ErrEmpty)
	var ve *valueobject.Error
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "password", ve.Field)
}

func TestVerifyWrongPassword(t *testing.T) {
	t.Parallel()
	h, pw := setupHasher(t)
	hash, err := h.Hash(pw)
	require.NoError(t, err)
	for _, wrong := range []string{"", "correct horse battery stapl", "correct horse battery staple ", "Correct horse battery staple", "x"} {
		err := h.Verify(hash, wrong)
		require.ErrorIs(t, err, valueobject.ErrPasswordMismatch, "%q", wrong)
		var ve *valueobject.Error
		require.False(t, errors.As(err, &ve), "a mismatch is not a field validation error")
	}
}

// TestVerifyOtherParams checks that hashes made with other parameters, older
// weaker ones or stronger ones, still verify: the parameters come from the
// hash, not from the Hasher.
func TestVerifyOtherParams(t *testing.T) {
	t.Parallel()
	current, pw := setupHasher(t)
	for _, p := range []valueobject.Argon2Params{
		{Memory: 32, Iterations: 1, Parallelism: 1, SaltLength: 8, KeyLength: 16},
		{Memory: 128, Iterations: 3, Parallelism: 4, SaltLength: 32, KeyLength: 64},
		{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 24},
	} {
		t.Run(fmt.Sprintf("%+v", p), func(t *testing.T) {
			t.Parallel()
			old, err := valueobject.NewHasher(&p)
			require.NoError(t, err)
			hash, err := old.Hash(pw)
			require.NoError(t, err)
			require.Contains(t, hash, fmt.Sprintf("$m=%d,t=%d,p=%d$", p.Memory, p.Iterations, p.Parallelism))

			require.NoError(t, current.Verify(hash, pw.Reveal()))
			require.ErrorIs(t, current.Verify(hash, "wrong password"), valueobject.ErrPasswordMismatch)
			require.True(t, current.NeedsRehash(hash))
			require.False(t, old.NeedsRehash(hash))

			ph, err := valueobject.ParsePasswordHash(hash)
			require.NoError(t, err)
			require.Equal(t, p, ph.Params)
		})
	}
}

// TestVerifyReferenceVector checks interoperability with the reference C
// implementation of argon2 (github.com/P-H-C/phc-winner-argon2):
//
//	echo -n password | argon2 somesalt -id -t 2 -m 16 -p 4 -l 32 -e
func TestVerifyReferenceVector(t *testing.T) {
	t.Parallel()
	const ref = "$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo"
	var h valueobject.Hasher
	require.NoError(t, h.Verify(ref, "password"))
	require.ErrorIs(t, h.Verify(ref, "Password"), valueobject.ErrPasswordMismatch)

	ph, err := valueobject.ParsePasswordHash(ref)
	require.NoError(t, err)
	require.Equal(t, []byte("somesalt"), ph.Salt)
	require.Equal(t, valueobject.Argon2Params{Memory: 65536, Iterations: 2, Parallelism: 4, SaltLength: 8, KeyLength: 32}, ph.Params)
	require.Equal(t, ref, ph.String())
}

func TestNeedsRehash(t *testing.T) {
	t.Parallel()
	h, pw := setupHasher(t)
	hash, err := h.Hash(pw)
	require.NoError(t, err)
	require.False(t, h.NeedsRehash(hash))

	tests := []struct {
		name   string
		params valueobject.Argon2Params
	}{
		{"memory", valueobject.Argon2Params{Memory: 128}},
		{"iterations", valueobject.Argon2Params{Iterations: 2}},
		{"parallelism", valueobject.Argon2Params{Parallelism: 2}},
		{"salt length", valueobject.Argon2Params{SaltLength: 32}},
		{"key length", valueobject.Argon2Params{KeyLength: 64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := fastParams
			switch {
			case tt.params.Memory != 0:
				p.Memory = tt.params.Memory
			case tt.params.Iterations != 0:
				p.Iterations = tt.params.Iterations
			case tt.params.Parallelism != 0:
				p.Parallelism = tt.params.Parallelism
			case tt.params.SaltLength != 0:
				p.SaltLength = tt.params.SaltLength
			case tt.params.KeyLength != 0:
				p.KeyLength = tt.params.KeyLength
			}
			other, err := valueobject.NewHasher(&p)
			require.NoError(t, err)
			require.True(t, other.NeedsRehash(hash))
		})
	}

	t.Run("unparsable", func(t *testing.T) {
		t.Parallel()
		require.True(t, h.NeedsRehash(""))
		require.True(t, h.NeedsRehash("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"))
	})
}

func TestVerifyAndRehash(t *testing.T) {
	t.Parallel()
	old, pw := setupHasher(t)
	hash, err := old.Hash(pw)
	require.NoError(t, err)

	newHash, err := old.VerifyAndRehash(hash, pw.Reveal())
	require.NoError(t, err)
	require.Empty(t, newHash, "current parameters: nothing to do")

	stronger := fastParams
	stronger.Iterations = 2
	current, err := valueobject.NewHasher(&stronger)
	require.NoError(t, err)

	newHash, err = current.VerifyAndRehash(hash, "wrong password")
	require.ErrorIs(t, err, valueobject.ErrPasswordMismatch)
	require.Empty(t, newHash)

	newHash, err = current.VerifyAndRehash(hash, pw.Reveal())
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(newHash, "$argon2id$v=19$m=64,t=2,p=1$"), newHash)
	require.NoError(t, current.Verify(newHash, pw.Reveal()))
	require.False(t, current.NeedsRehash(newHash))

	// A password that no longer passes the policy can still be upgraded.
	weak := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$" + rawKey(t, "password", "somesaltsomesalt")
	newHash, err = current.VerifyAndRehash(weak, "password")
	require.NoError(t, err)
	require.NoError(t, current.Verify(newHash, "password"))

	_, err = current.VerifyAndRehash("garbage", pw.Reveal())
	require.ErrorIs(t, err, valueobject.ErrUnknownHashFormat)
}

// rawKey returns the base64 argon2id key of plain and salt under
// fastParams, computed directly, to build hashes the Hasher would not make.
func rawKey(t *testing.T, plain, salt string) string {
	t.Helper()
	p := fastParams
	return base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte(plain), []byte(salt), p.Iterations, p.Memory, p.Parallelism, p.KeyLength))
}

func TestNewHasherRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		params valueobject.Argon2Params
		want   []string
	}{
		{"memory below 8 per lane", valueobject.Argon2Params{Memory: 16, Parallelism: 4}, []string{"memory 16 KiB out of range [8×parallelism = 32, 1048576]"}},
		{"memory above 1 GiB", valueobject.Argon2Params{Memory: 1<<20 + 1}, []string{"memory 1048577 KiB out of range"}},
		{"iterations", valueobject.Argon2Params{Iterations: 101}, []string{"iterations 101 out of range [1, 100]"}},
		{"salt short", valueobject.Argon2Params{SaltLength: 7}, []string{"salt length 7 out of range [8, 64]"}},
		{"salt long", valueobject.Argon2Params{SaltLength: 65}, []string{"salt length 65 out of range [8, 64]"}},
		{"key short", valueobject.Argon2Params{KeyLength: 15}, []string{"key length 15 out of range [16, 64]"}},
		{"key long", valueobject.Argon2Params{KeyLength: 65}, []string{"key length 65 out of range [16, 64]"}},
		{"all joined", valueobject.Argon2Params{Memory: 1, Iterations: 1000, SaltLength: 1, KeyLength: 1}, []string{"memory 1 KiB", "iterations 1000", "salt length 1", "key length 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := valueobject.NewHasher(&tt.params)
			require.Nil(t, h)
			require.ErrorContains(t, err, "valueobject: invalid argon2 parameters")
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}

	t.Run("zero fields take defaults", func(t *testing.T) {
		t.Parallel()
		h, err := valueobject.NewHasher(&valueobject.Argon2Params{Memory: 64})
		require.NoError(t, err)
		want := valueobject.DefaultArgon2Params
		want.Memory = 64
		require.Equal(t, want, h.Params())
	})
}

func TestParsePasswordHashRejects(t *testing.T) {
	t.Parallel()
	const (
		salt = "c29tZXNhbHRzb21lc2FsdA"                      // 16 bytes
		key  = "GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo" // 32 bytes
		form = "must have the form $argon2id$v=19$m=<KiB>,t=<iterations>,p=<parallelism>$<salt>$<key>"
		list = `parameters must be "m=<KiB>,t=<iterations>,p=<parallelism>"`
	)
	unknown, malformed := valueobject.ErrUnknownHashFormat, valueobject.ErrMalformedHash
	tests := []struct {
		name, in string
		sentinel error
		reason   string
	}{
		{"empty", "", valueobject.ErrEmpty, "must not be empty"},
		{"too long", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 300), malformed, "must be at most 256 bytes long"},
		{"not PHC", "plaintext", unknown, `is not a PHC string (it must start with "$argon2id$")`},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", unknown, `algorithm "2a" is not supported, want argon2id`},
		{"argon2i", "$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$IMit9qkFULCMA/ViizL57cnTLOa5DiVM9eMwpAvPwr4", unknown, `algorithm "argon2i" is not supported, want argon2id`},
		{"long algorithm", "$" + strings.Repeat("x", 40) + "$", unknown, `algorithm "xxxxxxxxxxxxxxxx..." is not supported, want argon2id`},
		{"no fields", "$argon2id", malformed, form},
		{"version 16 (no v=)", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key, unknown, `has no "v=" field, which means argon2 version 16 (0x10); only version 19 is supported`},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key, unknown, "argon2 version 16 is not supported, want 19"},
		{"bad version field", "$argon2id$x=19$m=64,t=1,p=1$" + salt + "$" + key, malformed, form},
		{"bad version number", "$argon2id$v=019$m=64,t=1,p=1$" + salt + "$" + key, malformed, "version must be a decimal number"},
		{"missing key", "$argon2id$v=19$m=64,t=1,p=1$" + salt, malformed, form},
		{"extra field", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$", malformed, form},
		{"keyid parameter", "$argon2id$v=19$m=64,t=1,p=1,keyid=abc$" + salt + "$" + key, malformed, list},
		{"params out of order", "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key, malformed, list},
		{"params missing", "$argon2id$v=19$m=64,t=1$" + salt + "$" + key, malformed, list},
		{"leading zero", "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key, malformed, "parameter m must be a decimal number without sign or leading zeros"},
		{"sign", "$argon2id$v=19$m=64,t=+1,p=1$" + salt + "$" + key, malformed, "parameter t must be a decimal number without sign or leading zeros"},
		{"empty number", "$argon2id$v=19$m=64,t=1,p=$" + salt + "$" + key, malformed, "parameter p must be a decimal number without sign or leading zeros"},
		{"uint32 overflow", "$argon2id$v=19$m=4294967296,t=1,p=1$" + salt + "$" + key, malformed, "parameter m must be a decimal number without sign or leading zeros"},
		{"parallelism 0", "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key, malformed, "parallelism 0 out of range [1, 255]"},
		{"parallelism 256", "$argon2id$v=19$m=4096,t=1,p=256$" + salt + "$" + key, malformed, "parallelism 256 out of range [1, 255]"},
		{"memory too large", "$argon2id$v=19$m=4194304,t=1,p=1$" + salt + "$" + key, malformed, "memory 4194304 KiB out of range [8×parallelism = 8, 1048576]"},
		{"memory below 8 per lane", "$argon2id$v=19$m=31,t=1,p=4$" + salt + "$" + key, malformed, "memory 31 KiB out of range [8×parallelism = 32, 1048576]"},
		{"iterations 0", "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key, malformed, "iterations 0 out of range [1, 100]"},
		{"iterations too many", "$argon2id$v=19$m=64,t=101,p=1$" + salt + "$" + key, malformed, "iterations 101 out of range [1, 100]"},
		{"several out of range", "$argon2id$v=19$m=1,t=0,p=1$" + salt + "$" + key, malformed, "memory 1 KiB out of range [8×parallelism = 8, 1048576]; iterations 0 out of range [1, 100]"},
		{"salt padded", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key, malformed, "salt must be unpadded standard base64"},
		{"salt URL alphabet", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA_-$" + key, malformed, "salt must be unpadded standard base64"},
		{"salt with newline", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRz\nb21lc2FsdA$" + key, malformed, "salt must be unpadded standard base64"},
		{"salt non-canonical trailing bits", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdB$" + key, malformed, "salt must be unpadded standard base64"},
		{"key invalid base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$not*base64", malformed, "key must be unpadded standard base64"},
		{"salt too short", "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbA$" + key, malformed, "salt length 7 out of range [8, 64]"},
		{"salt empty", "$argon2id$v=19$m=64,t=1,p=1$$" + key, malformed, "salt length 0 out of range [8, 64]"},
		{"key too short", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$GpZ3sK/oH9p7VIiV56G/", malformed, "key length 15 out of range [16, 64]"},
		{"key too long", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + base64.RawStdEncoding.EncodeToString(make([]byte, 65)), malformed, "key length 65 out of range [16, 64]"},
	}
	var h valueobject.Hasher
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ph, err := valueobject.ParsePasswordHash(tt.in)
			require.Zero(t, ph)
			require.ErrorIs(t, err, tt.sentinel)
			var ve *valueobject.Error
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "passwordHash", ve.Field)
			require.Equal(t, tt.reason, ve.Reason)

			err = h.Verify(tt.in, "password")
			require.ErrorIs(t, err, tt.sentinel, "Verify passes the parse error on")
			require.NotErrorIs(t, err, valueobject.ErrPasswordMismatch)
			require.True(t, h.NeedsRehash(tt.in))
		})
	}
}

func TestPasswordHashString(t *testing.T) {
	t.Parallel()
	ph := valueobject.PasswordHash{
		Params: valueobject.Argon2Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 8, KeyLength: 16},
		Salt:   []byte("somesalt"),
		Key:    []byte("0123456789abcdef"),
	}
	s := ph.String()
	require.Equal(t, "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$MDEyMzQ1Njc4OWFiY2RlZg", s)
	back, err := valueobject.ParsePasswordHash(s)
	require.NoError(t, err)
	require.Equal(t, ph, back)
}

func FuzzParsePasswordHash(f *testing.F) {
	for _, s := range []string{
		"$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=1048576,t=100,p=255$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$m=64,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=064,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ==$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo",
		"$argon2id$v=19$m=4294967295,t=4294967295,p=4294967295$$",
		"$argon2i$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$IMit9qkFULCMA/ViizL57cnTLOa5DiVM9eMwpAvPwr4",
		"$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"", "$", "$$$$$", "$argon2id$v=19$m=,t=,p=$$",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ph, err := valueobject.ParsePasswordHash(s)
		if err != nil {
			var ve *valueobject.Error
			if !errors.As(err, &ve) || ve.Field != "passwordHash" || ve.Reason == "" {
				t.Fatalf("ParsePasswordHash(%q): error %v is not a complete *Error", s, err)
			}
			if !errors.Is(err, valueobject.ErrEmpty) && !errors.Is(err, valueobject.ErrUnknownHashFormat) && !errors.Is(err, valueobject.ErrMalformedHash) {
				t.Fatalf("ParsePasswordHash(%q): unexpected sentinel in %v", s, err)
			}
			return
		}
		if got := ph.String(); got != s {
			t.Fatalf("ParsePasswordHash(%q).String() = %q, want the input back", s, got)
		}
		p := ph.Params
		if p.Memory > 1<<20 || p.Memory < 8*uint32(p.Parallelism) || p.Iterations < 1 || p.Iterations > 100 || p.Parallelism < 1 ||
			p.SaltLength != uint32(len(ph.Salt)) || p.KeyLength != uint32(len(ph.Key)) ||
			len(ph.Salt) < 8 || len(ph.Salt) > 64 || len(ph.Key) < 16 || len(ph.Key) > 64 {
			t.Fatalf("ParsePasswordHash(%q) accepted out-of-bounds %+v", s, p)
		}
		again, err := valueobject.ParsePasswordHash(ph.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", ph.String(), err)
		}
		require.Equal(t, ph, again)
	})
}

// FuzzVerify feeds Verify arbitrary hashes and passwords. Hashes whose
// (accepted) parameters would make one execution take long are only parsed:
// the bounds on them are tested by TestParsePasswordHashRejects. For every
// input it also checks that a hash made of the fuzzed password verifies with
// it and not with anything else.
func FuzzVerify(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "password")
	f.Add("$argon2id$v=19$m=32,t=1,p=1$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "")
	f.Add("$argon2id$v=19$m=65536,t=2,p=4$c29tZXNhbHQ$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo", "password")
	f.Add("$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "\x00\xff")
	f.Add("", "correct horse battery staple")
	h, err := valueobject.NewHasher(&fastParams)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, hash, plain string) {
		if ph, err := valueobject.ParsePasswordHash(hash); err == nil {
			if p := ph.Params; p.Memory > 256 || p.Iterations > 2 || p.Parallelism > 4 {
				return
			}
		}
		err := h.Verify(hash, plain)
		var ve *valueobject.Error
		if err != nil && !errors.Is(err, valueobject.ErrPasswordMismatch) && !errors.As(err, &ve) {
			t.Fatalf("Verify(%q, %q) = %v, want nil, ErrPasswordMismatch or *Error", hash, plain, err)
		}
		if err == nil {
			newHash, err := h.VerifyAndRehash(hash, plain)
			if err != nil || (newHash != "") != h.NeedsRehash(hash) {
				t.Fatalf("VerifyAndRehash(%q, %q) = %q, %v after Verify succeeded", hash, plain, newHash, err)
			}
			if newHash != "" && (h.Verify(newHash, plain) != nil || h.NeedsRehash(newHash)) {
				t.Fatalf("rehash %q of %q does not verify with current parameters", newHash, hash)
			}
		}

		own := "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$" + rawKey(t, plain, "somesaltsomesalt")
		if err := h.Verify(own, plain); err != nil {
			t.Fatalf("Verify of a hash of %q: %v", plain, err)
		}
		if err := h.Verify(own, plain+"x"); !errors.Is(err, valueobject.ErrPasswordMismatch) {
			t.Fatalf("Verify of a hash of %q with %q: %v", plain, plain+"x", err)
		}
	})
}

// BenchmarkHasher measures one hash and one verification at the default
// (OWASP) parameters: the cost of a sign-up and of a sign-in.
func BenchmarkHasher(b *testing.B) {
	h, err := valueobject.NewHasher(nil)
	require.NoError(b, err)
	pw, err := valueobject.NewPassword("correct horse battery staple")
	require.NoError(b, err)
	hash, err := h.Hash(pw)
	require.NoError(b, err)
	b.Run("Hash", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = h.Hash(pw)
		}
	})
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = h.Verify(hash, pw.Reveal())
		}
	})
}
