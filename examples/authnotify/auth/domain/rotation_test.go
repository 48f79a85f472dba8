package domain_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
)

// A code issued before the field key rotated still verifies after it:
// the new key hashes, the old one still checks (issue 9: keys rotate
// without dropping codes in flight).
func TestCodeIssuedBeforeAKeyRotationStillVerifies(t *testing.T) {
	t.Parallel()
	b := setup(t) // its factory's code key comes from the old field key
	u, code := b.register(t)
	snap := u.Snapshot()

	newKey, err := fieldcrypt.New(bytes.Repeat([]byte{2}, fieldcrypt.KeySize))
	require.NoError(t, err)
	factory := func(old [][]byte) *domain.Factory {
		f, err := domain.NewFactory(newKey, newKey.DeriveKey("test/otp"), &domain.FactoryConfig{
			Clock: b.clock.Now, Codes: b.codes.Next, RegistrationTokens: fixedToken, OldCodeKeys: old,
		})
		require.NoError(t, err)
		return f
	}

	// Without the old key the code is lost (what happened before).
	lost, err := factory(nil).Unmarshal(snap)
	require.NoError(t, err)
	require.ErrorIs(t, lost.Verify(code, testToken), domain.ErrInvalidCode)

	// With the old key among the ones that verify, it holds.
	kept, err := factory([][]byte{b.cipher.DeriveKey("test/otp")}).Unmarshal(snap)
	require.NoError(t, err)
	require.NoError(t, kept.Verify(code, testToken))
	require.True(t, kept.IsVerified())
}
