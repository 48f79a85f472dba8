package authevents_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
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
		"auth.account_expired": true,
	}, names)

	rat := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rb, err := json.Marshal(authevents.PasswordResetRequested{UserID: "u", Email: "e", EncryptedCode: "v1.x", CodeExpiresAt: rat, RequestedAt: rat})
	require.NoError(t, err)
	require.JSONEq(t, `{"user_id":"u","email":"e","encrypted_code":"v1.x","code_expires_at":"2026-01-02T03:04:05Z","requested_at":"2026-01-02T03:04:05Z"}`, string(rb))
	rb, err = json.Marshal(authevents.AccountExpired{UserID: "u", ExpiredAt: rat})
	require.NoError(t, err)
	require.JSONEq(t, `{"user_id":"u","expired_at":"2026-01-02T03:04:05Z"}`, string(rb))
	rb, err = json.Marshal(authevents.PasswordResetFailed{UserID: "u", Attempt: 2, FailedAt: rat})
	require.NoError(t, err)
	require.JSONEq(t, `{"user_id":"u","attempt":2,"failed_at":"2026-01-02T03:04:05Z"}`, string(rb))

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := json.Marshal(authevents.UserRegistered{UserID: "u", Email: "e", EncryptedCode: "v1.x", CodeExpiresAt: at, RegisteredAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"user_id":"u","email":"e","encrypted_code":"v1.x","code_expires_at":"2026-01-02T03:04:05Z","registered_at":"2026-01-02T03:04:05Z"}`, string(b))

	b, err = json.Marshal(authevents.UserOtpRequested{UserID: "u", Email: "e", EncryptedCode: "v1.x", CodeExpiresAt: at, RequestedAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"user_id":"u","email":"e","encrypted_code":"v1.x","code_expires_at":"2026-01-02T03:04:05Z","requested_at":"2026-01-02T03:04:05Z"}`, string(b))

	b, err = json.Marshal(authevents.UserVerified{UserID: "u", Email: "e", VerifiedAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"user_id":"u","email":"e","verified_at":"2026-01-02T03:04:05Z"}`, string(b))

	b, err = json.Marshal(authevents.PasswordChanged{UserID: "u", Email: "e", ChangedAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"user_id":"u","email":"e","changed_at":"2026-01-02T03:04:05Z"}`, string(b))

	b, err = json.Marshal(authevents.CodeVerificationFailed{UserID: "u", Attempt: 2, FailedAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"user_id":"u","attempt":2,"failed_at":"2026-01-02T03:04:05Z"}`, string(b))
}

// Payloads of schema version 1 (camelCase names), in outbox rows written
// before version 2 or still on a topic, decode into today's types.
func TestVersion1PayloadsStillDecode(t *testing.T) {
	t.Parallel()
	reg := eventbus.NewRegistry(nil)
	require.NoError(t, authevents.Register(reg))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		v1   string
		want aggregate.Event
	}{
		{`{"userId":"u","email":"e","encryptedCode":"v1.x","codeExpiresAt":"2026-01-02T03:04:05Z","registeredAt":"2026-01-02T03:04:05Z"}`,
			authevents.UserRegistered{UserID: "u", Email: "e", EncryptedCode: "v1.x", CodeExpiresAt: at, RegisteredAt: at}},
		{`{"userId":"u","email":"e","verifiedAt":"2026-01-02T03:04:05Z"}`,
			authevents.UserVerified{UserID: "u", Email: "e", VerifiedAt: at}},
		{`{"userId":"u","email":"e","encryptedCode":"v1.x","codeExpiresAt":"2026-01-02T03:04:05Z","requestedAt":"2026-01-02T03:04:05Z"}`,
			authevents.UserOtpRequested{UserID: "u", Email: "e", EncryptedCode: "v1.x", CodeExpiresAt: at, RequestedAt: at}},
		{`{"userId":"u","email":"e","changedAt":"2026-01-02T03:04:05Z"}`,
			authevents.PasswordChanged{UserID: "u", Email: "e", ChangedAt: at}},
		{`{"userId":"u","attempt":2,"failedAt":"2026-01-02T03:04:05Z"}`,
			authevents.CodeVerificationFailed{UserID: "u", Attempt: 2, FailedAt: at}},
		{`{"userId":"u","email":"e","encryptedCode":"v1.x","codeExpiresAt":"2026-01-02T03:04:05Z","requestedAt":"2026-01-02T03:04:05Z"}`,
			authevents.PasswordResetRequested{UserID: "u", Email: "e", EncryptedCode: "v1.x", CodeExpiresAt: at, RequestedAt: at}},
		{`{"userId":"u","attempt":2,"failedAt":"2026-01-02T03:04:05Z"}`,
			authevents.PasswordResetFailed{UserID: "u", Attempt: 2, FailedAt: at}},
	} {
		got, err := reg.DecodePayload(tc.want.EventName(), 1, []byte(tc.v1))
		require.NoError(t, err, tc.want.EventName())
		require.Equal(t, tc.want, got)

		// Today's payloads are version 2 and decode as they are.
		payload, version, err := reg.EncodePayload(tc.want)
		require.NoError(t, err)
		require.Equal(t, authevents.SchemaVersion, version)
		require.NotContains(t, string(payload), "userId")
		got, err = reg.DecodePayload(tc.want.EventName(), version, payload)
		require.NoError(t, err)
		require.Equal(t, tc.want, got)
	}
}
