package domain

import "time"

// Snapshot is the complete state of a [User], for repository adapters to
// store. It has no storage tags: an adapter copies it into its own row or
// document type. Build a User back from it with [Factory.Unmarshal].
type Snapshot struct {
	ID                string
	Email             string
	PasswordHash      string // argon2id PHC string
	Status            Status
	CreatedAt         time.Time
	VerifiedAt        time.Time // zero while unverified
	PasswordChangedAt time.Time // zero if never changed

	// The current one-time code: its HMAC (nil when there is none, such
	// as after verification), when it was issued, when it expires and how
	// many wrong tries it has had.
	CodeHash      []byte
	CodeIssuedAt  time.Time
	CodeExpiresAt time.Time
	CodeFailures  int

	// RegistrationHash is the HMAC of the current registration's token;
	// nil once verified (and for users stored before tokens existed, who
	// register again to get one).
	RegistrationHash []byte
}

// Snapshot returns the user's state. The result shares nothing with u.
func (u *User) Snapshot() Snapshot {
	return Snapshot{
		ID:                u.ID(),
		Email:             u.email.String(),
		PasswordHash:      u.passwordHash,
		Status:            u.status,
		CreatedAt:         u.createdAt,
		VerifiedAt:        u.verifiedAt,
		PasswordChangedAt: u.passwordChangedAt,
		CodeHash:          append([]byte(nil), u.code.hash...),
		CodeIssuedAt:      u.code.issuedAt,
		CodeExpiresAt:     u.code.expiresAt,
		CodeFailures:      u.code.failures,
		RegistrationHash:  append([]byte(nil), u.registrationHash...),
	}
}
