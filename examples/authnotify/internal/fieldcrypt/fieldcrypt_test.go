package fieldcrypt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
)

func testKey() []byte { k := sha256.Sum256([]byte("fieldcrypt test key")); return k[:] }

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

func TestParseKeyRefusesLowEntropy(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		strings.Repeat("ab", 32),
		strings.Repeat("0f", 32),
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		base64.StdEncoding.EncodeToString([]byte("passwordpasswordpasswordpassword")),
		base64.StdEncoding.EncodeToString(make([]byte, fieldcrypt.KeySize)),
	} {
		_, err := fieldcrypt.ParseKey(s)
		require.ErrorContains(t, err, "too little entropy", s)
		_, err = fieldcrypt.ParseKeys("k1:" + s)
		require.ErrorContains(t, err, "too little entropy", s)
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := fieldcrypt.GenerateKey(), fieldcrypt.GenerateKey()

	// Before: one unnamed key (the original form), then one named key.
	unnamed, err := fieldcrypt.ParseKeys(oldKey)
	require.NoError(t, err)
	before := newRing(t, unnamed)
	sealedV1, err := before.Seal("111111", "u")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(sealedV1, "v1."))
	named, err := fieldcrypt.ParseKeys("old:" + oldKey)
	require.NoError(t, err)
	sealedOld, err := newRing(t, named).Seal("222222", "u")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(sealedOld, "v2.old."))

	// During: the new key seals, both open, so codes in flight survive.
	keys, err := fieldcrypt.ParseKeys(" new:" + newKey + " , old:" + oldKey + " ")
	require.NoError(t, err)
	require.Equal(t, []string{"new", "old"}, []string{keys[0].ID, keys[1].ID})
	during := newRing(t, keys)
	for sealed, want := range map[string]string{sealedV1: "111111", sealedOld: "222222"} {
		got, err := during.Open(sealed, "u")
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	sealedNew, err := during.Seal("333333", "u")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(sealedNew, "v2.new."))
	_, err = before.Open(sealedNew, "u")
	require.ErrorIs(t, err, fieldcrypt.ErrDecrypt, "the old key alone cannot open the new key's seals")

	// After: the old key is gone, and what it sealed no longer opens.
	after, err := fieldcrypt.ParseKeys("new:" + newKey)
	require.NoError(t, err)
	got, err := newRing(t, after).Open(sealedNew, "u")
	require.NoError(t, err)
	require.Equal(t, "333333", got)
	_, err = newRing(t, after).Open(sealedOld, "u")
	require.ErrorIs(t, err, fieldcrypt.ErrDecrypt)

	// A seal naming the wrong key ID does not open with another key.
	forged := "v2.old." + strings.TrimPrefix(sealedNew, "v2.new.")
	_, err = during.Open(forged, "u")
	require.ErrorIs(t, err, fieldcrypt.ErrDecrypt)
}

func TestParseKeysRejects(t *testing.T) {
	t.Parallel()
	k := fieldcrypt.GenerateKey()
	for _, s := range []string{
		"", "a:" + k + ",a:" + fieldcrypt.GenerateKey(), // duplicate ID
		k + "," + fieldcrypt.GenerateKey(), // no IDs
		"bad id:" + k, ":" + k, "a:" + k + ",", "a:short",
	} {
		_, err := fieldcrypt.ParseKeys(s)
		require.Error(t, err, s)
	}
	_, err := fieldcrypt.NewRing(nil)
	require.Error(t, err)
	_, err = fieldcrypt.NewRing([]fieldcrypt.Key{{ID: "a", Secret: testKey()}, {Secret: testKey()}})
	require.Error(t, err)
}

func newRing(t testing.TB, keys []fieldcrypt.Key) *fieldcrypt.Cipher {
	t.Helper()
	c, err := fieldcrypt.NewRing(keys)
	require.NoError(t, err)
	return c
}

func TestDeriveKeysFollowsTheRing(t *testing.T) {
	t.Parallel()
	keys, err := fieldcrypt.ParseKeys("new:" + fieldcrypt.GenerateKey() + ",old:" + fieldcrypt.GenerateKey())
	require.NoError(t, err)
	ring, err := fieldcrypt.NewRing(keys)
	require.NoError(t, err)
	derived := ring.DeriveKeys("p")
	require.Len(t, derived, 2)
	require.Equal(t, ring.DeriveKey("p"), derived[0], "the first key's derivation is DeriveKey's")
	require.NotEqual(t, derived[0], derived[1])
	only, err := fieldcrypt.NewRing(keys[1:])
	require.NoError(t, err)
	require.Equal(t, only.DeriveKey("p"), derived[1], "each entry is that key's own derivation")
}
