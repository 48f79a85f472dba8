// Package authevents is the published language of the auth module: the
// events it records and publishes, which other modules consume.
//
// # Why a package of its own
//
// Modules of the example talk only through events and never import each
// other's packages. The notification module still needs the Go types of
// the events it consumes, so they live here, outside auth/: this package is
// the contract between the two, and it holds nothing but that contract
// (plain structs, their stable names and JSON field names), never domain
// code. The auth aggregate records these very types, so what is stored in
// the outbox is exactly what is published.
//
// Change these types only compatibly: add fields, never rename or repurpose
// one, and never change an event name. The JSON tags are the wire format
// (the eventbus codec encodes payloads as JSON), so they are part of the
// contract and must not follow Go renames. A change that is not
// compatible raises [SchemaVersion] and comes with an upcaster, as the
// move from camelCase to snake_case names did ([UpcastV1]).
//
// The catalogue of these events — names, versions, topic, key and a JSON
// Schema of each payload, for teams that generate their types in another
// language — is docs/events.json (docs/events.md to read), printed by
// `authnotify catalog`.
//
// # Secrets
//
// The one-time code a user must type in travels to the notification module
// inside [UserRegistered], [UserOtpRequested] and [PasswordResetRequested], but only sealed with the
// example's field cipher (internal/fieldcrypt, AES-256-GCM, the user ID as
// associated data): EncryptedCode is ciphertext, readable neither in the
// outbox table nor on the topic.
package authevents

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

// AggregateType is the aggregate type of every auth event: the user.
const AggregateType = "user"

// SchemaVersion is the schema version of every auth event's payload.
// Version 1 had camelCase field names ("userId"); version 2 has the
// snake_case names of the json tags ("user_id"). Payloads of version 1,
// in outbox rows written before the change or on a topic, are renamed by
// [UpcastV1] on the way in.
const SchemaVersion = 2

// Stable event names. They identify the events in the outbox and on the
// wire; they never change.
const (
	NameUserRegistered         = "auth.user_registered"
	NameUserVerified           = "auth.user_verified"
	NameUserOtpRequested       = "auth.user_otp_requested"
	NamePasswordChanged        = "auth.password_changed"
	NameCodeVerificationFailed = "auth.code_verification_failed"
	NamePasswordResetRequested = "auth.password_reset_requested"
	NamePasswordResetFailed    = "auth.password_reset_failed"
	NameAccountExpired         = "auth.account_expired"
)

// UserRegistered says that an account was created. It carries the first
// verification code, sealed; the notification module emails it.
type UserRegistered struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	// EncryptedCode is the 6-digit verification code sealed with the
	// field cipher, the user ID as associated data.
	EncryptedCode string `json:"encrypted_code"`
	// CodeExpiresAt is when the code stops working.
	CodeExpiresAt time.Time `json:"code_expires_at"`
	RegisteredAt  time.Time `json:"registered_at"`
}

// EventName implements [aggregate.Event].
func (UserRegistered) EventName() string { return NameUserRegistered }

// EventVersion implements [aggregate.Versioned].
func (UserRegistered) EventVersion() int { return SchemaVersion }

// UserVerified says that the user proved they own the address; a welcome
// email follows.
type UserVerified struct {
	UserID     string    `json:"user_id"`
	Email      string    `json:"email"`
	VerifiedAt time.Time `json:"verified_at"`
}

// EventName implements [aggregate.Event].
func (UserVerified) EventName() string { return NameUserVerified }

// EventVersion implements [aggregate.Versioned].
func (UserVerified) EventVersion() int { return SchemaVersion }

// UserOtpRequested says that an unverified user asked for a new code. The
// previous code no longer works. It carries the new code, sealed.
type UserOtpRequested struct {
	UserID        string    `json:"user_id"`
	Email         string    `json:"email"`
	EncryptedCode string    `json:"encrypted_code"`
	CodeExpiresAt time.Time `json:"code_expires_at"`
	RequestedAt   time.Time `json:"requested_at"`
}

// EventName implements [aggregate.Event].
func (UserOtpRequested) EventName() string { return NameUserOtpRequested }

// EventVersion implements [aggregate.Versioned].
func (UserOtpRequested) EventVersion() int { return SchemaVersion }

// PasswordChanged says that the user changed their password; a security
// notice email follows.
type PasswordChanged struct {
	UserID    string    `json:"user_id"`
	Email     string    `json:"email"`
	ChangedAt time.Time `json:"changed_at"`
}

// EventName implements [aggregate.Event].
func (PasswordChanged) EventName() string { return NamePasswordChanged }

// EventVersion implements [aggregate.Versioned].
func (PasswordChanged) EventVersion() int { return SchemaVersion }

// CodeVerificationFailed says that a wrong code was typed in. It is
// recorded so that each failed attempt changes the aggregate's version:
// concurrent guesses then conflict instead of all counting as the first
// one, and the attempt limit holds. No email follows; it is there for
// security monitoring.
type CodeVerificationFailed struct {
	UserID string `json:"user_id"`
	// Attempt counts the wrong tries against the current code, from 1.
	Attempt  int       `json:"attempt"`
	FailedAt time.Time `json:"failed_at"`
}

// EventName implements [aggregate.Event].
func (CodeVerificationFailed) EventName() string { return NameCodeVerificationFailed }

// EventVersion implements [aggregate.Versioned].
func (CodeVerificationFailed) EventVersion() int { return SchemaVersion }

// PasswordResetRequested says that a verified user asked to reset a
// forgotten password. It carries the reset code, sealed like the
// verification code; the notification module emails it. A successful
// reset is recorded as [PasswordChanged].
type PasswordResetRequested struct {
	UserID        string    `json:"user_id"`
	Email         string    `json:"email"`
	EncryptedCode string    `json:"encrypted_code"`
	CodeExpiresAt time.Time `json:"code_expires_at"`
	RequestedAt   time.Time `json:"requested_at"`
}

// EventName implements [aggregate.Event].
func (PasswordResetRequested) EventName() string { return NamePasswordResetRequested }

// EventVersion implements [aggregate.Versioned].
func (PasswordResetRequested) EventVersion() int { return SchemaVersion }

// PasswordResetFailed is [CodeVerificationFailed] for reset codes: a wrong
// reset code was typed in. No email follows.
type PasswordResetFailed struct {
	UserID string `json:"user_id"`
	// Attempt counts the wrong tries against the current reset code, from 1.
	Attempt  int       `json:"attempt"`
	FailedAt time.Time `json:"failed_at"`
}

// EventName implements [aggregate.Event].
func (PasswordResetFailed) EventName() string { return NamePasswordResetFailed }

// EventVersion implements [aggregate.Versioned].
func (PasswordResetFailed) EventVersion() int { return SchemaVersion }

// AccountExpired says that an account was removed because its address
// was never verified within the service's time limit
// (UNVERIFIED_ACCOUNT_TTL). Its address is free again: a new registration
// with it creates a new account. No email follows.
type AccountExpired struct {
	UserID    string    `json:"user_id"`
	ExpiredAt time.Time `json:"expired_at"`
}

// EventName implements [aggregate.Event].
func (AccountExpired) EventName() string { return NameAccountExpired }

// EventVersion implements [aggregate.Versioned].
func (AccountExpired) EventVersion() int { return SchemaVersion }

// All returns a zero value of every auth event, for registering them with
// an event registry.
func All() []aggregate.Event {
	return []aggregate.Event{
		UserRegistered{}, UserVerified{}, UserOtpRequested{}, PasswordChanged{}, CodeVerificationFailed{},
		PasswordResetRequested{}, PasswordResetFailed{}, AccountExpired{},
	}
}

// Register registers every event of the contract in reg under its stable
// name and the user aggregate type, with the upcaster from schema
// version 1: the one registration of the service, used by the outbox to
// encode the events, by the relay and the consumers for their topic, and
// by the consumers to decode them.
func Register(reg *eventbus.Registry) error {
	at, up := eventbus.AggregateType(AggregateType), eventbus.Upcaster(1, UpcastV1)
	return errors.Join(
		eventbus.Register[UserRegistered](reg, at, up),
		eventbus.Register[UserVerified](reg, at, up),
		eventbus.Register[UserOtpRequested](reg, at, up),
		eventbus.Register[PasswordChanged](reg, at, up),
		eventbus.Register[CodeVerificationFailed](reg, at, up),
		eventbus.Register[PasswordResetRequested](reg, at, up),
		eventbus.Register[PasswordResetFailed](reg, at, up),
		eventbus.Register[AccountExpired](reg, at, up),
	)
}

// v1Names maps the field names of schema version 1 to version 2's.
var v1Names = map[string]string{
	"userId":        "user_id",
	"encryptedCode": "encrypted_code",
	"codeExpiresAt": "code_expires_at",
	"registeredAt":  "registered_at",
	"verifiedAt":    "verified_at",
	"requestedAt":   "requested_at",
	"changedAt":     "changed_at",
	"failedAt":      "failed_at",
	"expiredAt":     "expired_at",
}

// UpcastV1 turns the payload of any auth event at schema version 1
// (camelCase field names) into version 2 (snake_case): the fields keep
// their values, only the names change; names it does not know are kept.
func UpcastV1(payload json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, err
	}
	out := make(map[string]json.RawMessage, len(fields))
	for name, v := range fields {
		if v2, ok := v1Names[name]; ok {
			name = v2
		}
		out[name] = v
	}
	return json.Marshal(out)
}
