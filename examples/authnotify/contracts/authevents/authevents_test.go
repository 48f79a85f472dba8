package authevents_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
)

// The names and JSON field names are the wire contract: this test fails if
// either changes by accident.
func TestContractIsStable(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, e := range authevents.All() {
		require.False(t, names[e.EventName()], "duplicate name %s", e.EventName())
		names[e.EventName()] = true
	}
	require.Equal(t, map[string]bool{
		"auth.user_registered": true, "auth.user_verified": true, "auth.user_otp_requested": true,
		"auth.password_changed": true, "auth.code_verification_failed": true,
		"auth.password_reset_requested": true, "auth.password_reset_failed": true,
	}, names)

	rat := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rb, err := json.Marshal(authevents.PasswordResetRequested{UserID: "u", Email: "e", EncryptedCode: "v1.x", CodeExpiresAt: rat, RequestedAt: rat})
	require.NoError(t, err)
	require.JSONEq(t, `{"userId":"u","email":"e","encryptedCode":"v1.x","codeExpiresAt":"2026-01-02T03:04:05Z","requestedAt":"2026-01-02T03:04:05Z"}`, string(rb))
	rb, err = json.Marshal(authevents.PasswordResetFailed{UserID: "u", Attempt: 2, FailedAt: rat})
	require.NoError(t, err)
	require.JSONEq(t, `{"userId":"u","attempt":2,"failedAt":"2026-01-02T03:04:05Z"}`, string(rb))

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := json.Marshal(authevents.UserRegistered{UserID: "u", Email: "e", EncryptedCode: "v1.x", CodeExpiresAt: at, RegisteredAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"userId":"u","email":"e","encryptedCode":"v1.x","codeExpiresAt":"2026-01-02T03:04:05Z","registeredAt":"2026-01-02T03:04:05Z"}`, string(b))

	b, err = json.Marshal(authevents.UserOtpRequested{UserID: "u", Email: "e", EncryptedCode: "v1.x", CodeExpiresAt: at, RequestedAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"userId":"u","email":"e","encryptedCode":"v1.x","codeExpiresAt":"2026-01-02T03:04:05Z","requestedAt":"2026-01-02T03:04:05Z"}`, string(b))

	b, err = json.Marshal(authevents.UserVerified{UserID: "u", Email: "e", VerifiedAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"userId":"u","email":"e","verifiedAt":"2026-01-02T03:04:05Z"}`, string(b))

	b, err = json.Marshal(authevents.PasswordChanged{UserID: "u", Email: "e", ChangedAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"userId":"u","email":"e","changedAt":"2026-01-02T03:04:05Z"}`, string(b))

	b, err = json.Marshal(authevents.CodeVerificationFailed{UserID: "u", Attempt: 2, FailedAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"userId":"u","attempt":2,"failedAt":"2026-01-02T03:04:05Z"}`, string(b))
}
