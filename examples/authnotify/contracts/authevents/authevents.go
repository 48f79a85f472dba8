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
// contract and must not follow Go renames.
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
	"errors"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

// AggregateType is the aggregate type of every auth event: the user.
const AggregateType = "user"

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
	UserID string `json:"userId"`
	Email  string `json:"email"`
	// EncryptedCode is the 6-digit verification code sealed with the
	// field cipher, the user ID as associated data.
	EncryptedCode string `json:"encryptedCode"`
	// CodeExpiresAt is when the code stops working.
	CodeExpiresAt time.Time `json:"codeExpiresAt"`
	RegisteredAt  time.Time `json:"registeredAt"`
}

// EventName implements [aggregate.Event].
func (UserRegistered) EventName() string { return NameUserRegistered }

// UserVerified says that the user proved they own the address; a welcome
// email follows.
type UserVerified struct {
	UserID     string    `json:"userId"`
	Email      string    `json:"email"`
	VerifiedAt time.Time `json:"verifiedAt"`
}

// EventName implements [aggregate.Event].
func (UserVerified) EventName() string { return NameUserVerified }

// UserOtpRequested says that an unverified user asked for a new code. The
// previous code no longer works. It carries the new code, sealed.
type UserOtpRequested struct {
	UserID        string    `json:"userId"`
	Email         string    `json:"email"`
	EncryptedCode string    `json:"encryptedCode"`
	CodeExpiresAt time.Time `json:"codeExpiresAt"`
	RequestedAt   time.Time `json:"requestedAt"`
}

// EventName implements [aggregate.Event].
func (UserOtpRequested) EventName() string { return NameUserOtpRequested }

// PasswordChanged says that the user changed their password; a security
// notice email follows.
type PasswordChanged struct {
	UserID    string    `json:"userId"`
	Email     string    `json:"email"`
	ChangedAt time.Time `json:"changedAt"`
}

// EventName implements [aggregate.Event].
func (PasswordChanged) EventName() string { return NamePasswordChanged }

// CodeVerificationFailed says that a wrong code was typed in. It is
// recorded so that each failed attempt changes the aggregate's version:
// concurrent guesses then conflict instead of all counting as the first
// one, and the attempt limit holds. No email follows; it is there for
// security monitoring.
type CodeVerificationFailed struct {
	UserID string `json:"userId"`
	// Attempt counts the wrong tries against the current code, from 1.
	Attempt  int       `json:"attempt"`
	FailedAt time.Time `json:"failedAt"`
}

// EventName implements [aggregate.Event].
func (CodeVerificationFailed) EventName() string { return NameCodeVerificationFailed }

// PasswordResetRequested says that a verified user asked to reset a
// forgotten password. It carries the reset code, sealed like the
// verification code; the notification module emails it. A successful
// reset is recorded as [PasswordChanged].
type PasswordResetRequested struct {
	UserID        string    `json:"userId"`
	Email         string    `json:"email"`
	EncryptedCode string    `json:"encryptedCode"`
	CodeExpiresAt time.Time `json:"codeExpiresAt"`
	RequestedAt   time.Time `json:"requestedAt"`
}

// EventName implements [aggregate.Event].
func (PasswordResetRequested) EventName() string { return NamePasswordResetRequested }

// PasswordResetFailed is [CodeVerificationFailed] for reset codes: a wrong
// reset code was typed in. No email follows.
type PasswordResetFailed struct {
	UserID string `json:"userId"`
	// Attempt counts the wrong tries against the current reset code, from 1.
	Attempt  int       `json:"attempt"`
	FailedAt time.Time `json:"failedAt"`
}

// EventName implements [aggregate.Event].
func (PasswordResetFailed) EventName() string { return NamePasswordResetFailed }

// AccountExpired says that an account was removed because its address
// was never verified within the service's time limit
// (UNVERIFIED_ACCOUNT_TTL). Its address is free again: a new registration
// with it creates a new account. No email follows.
type AccountExpired struct {
	UserID    string    `json:"userId"`
	ExpiredAt time.Time `json:"expiredAt"`
}

// EventName implements [aggregate.Event].
func (AccountExpired) EventName() string { return NameAccountExpired }

// All returns a zero value of every auth event, for registering them with
// an event registry.
func All() []aggregate.Event {
	return []aggregate.Event{
		UserRegistered{}, UserVerified{}, UserOtpRequested{}, PasswordChanged{}, CodeVerificationFailed{},
		PasswordResetRequested{}, PasswordResetFailed{}, AccountExpired{},
	}
}

// Register registers every event of the contract in reg under its stable
// name and the user aggregate type: the one registration of the service,
// used by the outbox to encode the events, by the relay and the consumers
// for their topic, and by the consumers to decode them.
func Register(reg *eventbus.Registry) error {
	at := eventbus.AggregateType(AggregateType)
	return errors.Join(
		eventbus.Register[UserRegistered](reg, at),
		eventbus.Register[UserVerified](reg, at),
		eventbus.Register[UserOtpRequested](reg, at),
		eventbus.Register[PasswordChanged](reg, at),
		eventbus.Register[CodeVerificationFailed](reg, at),
		eventbus.Register[PasswordResetRequested](reg, at),
		eventbus.Register[PasswordResetFailed](reg, at),
		eventbus.Register[AccountExpired](reg, at),
	)
}
