package fieldcrypt_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
)

func testKey() []byte { return bytes.Repeat([]byte{7}, fieldcrypt.KeySize) }

func newCipher(t testing.TB, key []byte) *fieldcrypt.Cipher {
	t.Helper()
	c, err := fieldcrypt.New(key)
	require.NoError(t, err)
	return c
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	c := newCipher(t, testKey())

	sealed, err := c.Seal("123456", "user-1")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(sealed, "v1."))
	require.NotContains(t, sealed, "123456")

	plain, err := c.Open(sealed, "user-1")
	require.NoError(t, err)
	require.Equal(t, "123456", plain)

	again, err := c.Seal("123456", "user-1")
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "every seal uses a fresh nonce")
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	c := newCipher(t, testKey())
	sealed, err := c.Seal("123456", "user-1")
	require.NoError(t, err)

	other := newCipher(t, bytes.Repeat([]byte{8}, fieldcrypt.KeySize))
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sealed, "v1."))
	require.NoError(t, err)
	raw[len(raw)-1] ^= 1
	tampered := "v1." + base64.RawURLEncoding.EncodeToString(raw)

	for name, open := range map[string]func() (string, error){
		"other associated data": func() (string, error) { return c.Open(sealed, "user-2") },
		"other key":             func() (string, error) { return other.Open(sealed, "user-1") },
		"tampered":              func() (string, error) { return c.Open(tampered, "user-1") },
		"no prefix":             func() (string, error) { return c.Open(strings.TrimPrefix(sealed, "v1."), "user-1") },
		"not base64":            func() (string, error) { return c.Open("v1.!!!", "user-1") },
		"too short":             func() (string, error) { return c.Open("v1.AAAA", "user-1") },
		"empty":                 func() (string, error) { return c.Open("", "user-1") },
		"plain text":            func() (string, error) { return c.Open("123456", "user-1") },
	} {
		_, err := open()
		require.ErrorIs(t, err, fieldcrypt.ErrDecrypt, name)
	}
}

func TestNewRejectsWrongKeyLength(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 16, 31, 33, 64} {
		_, err := fieldcrypt.New(make([]byte, n))
		require.Error(t, err, n)
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	key := testKey()
	for _, s := range []string{
		hex.EncodeToString(key),
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key),
		"  " + base64.RawURLEncoding.EncodeToString(key) + "\n",
	} {
		got, err := fieldcrypt.ParseKey(s)
		require.NoError(t, err, s)
		require.Equal(t, key, got, s)
	}
	for _, s := range []string{"", "short", hex.EncodeToString(key[:16]), base64.StdEncoding.EncodeToString(key[:31])} {
		_, err := fieldcrypt.ParseKey(s)
		require.Error(t, err, s)
	}

	generated, err := fieldcrypt.ParseKey(fieldcrypt.GenerateKey())
	require.NoError(t, err)
	require.Len(t, generated, fieldcrypt.KeySize)
	require.NotEqual(t, fieldcrypt.GenerateKey(), fieldcrypt.GenerateKey())
}

func TestDeriveKeySeparatesPurposes(t *testing.T) {
	t.Parallel()
	c := newCipher(t, testKey())
	a, b := c.DeriveKey("purpose-a"), c.DeriveKey("purpose-b")
	require.Len(t, a, fieldcrypt.KeySize)
	require.NotEqual(t, a, b)
	require.NotEqual(t, testKey(), a)
	require.Equal(t, a, c.DeriveKey("purpose-a"))
}

func FuzzOpen(f *testing.F) {
	c := newCipher(f, testKey())
	sealed, _ := c.Seal("123456", "u")
	f.Add(sealed)
	f.Add("v1.")
	f.Add("v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, s string) {
		plain, err := c.Open(s, "u")
		if err == nil && s != sealed {
			// Only genuine seals open; a forgery would be a GCM break.
			require.Equal(t, "123456", plain)
		}
	})
}
