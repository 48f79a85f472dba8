// Package domain is the auth module's domain layer: the [User] aggregate
// with every business rule of sign-up, verification, log-in and password
// change, its errors, and the [Repository] port its adapters implement.
//
// It imports the dddkit aggregate and valueobject packages, the published
// event contract (contracts/authevents) and the standard library; nothing
// from storage, transport or HTTP.
//
// # Rules
//
//   - [Factory.Register] creates an unverified user with an argon2id
//     password hash and issues a 6-digit code from crypto/rand, valid for
//     [CodeTTL] (10 minutes). The code is kept only as an HMAC-SHA256 hash
//     bound to the user ID; the plain code leaves the aggregate only sealed
//     ([CodeSealer]) inside the [authevents.UserRegistered] event. It also
//     issues a registration token ([User.IssuedRegistrationToken]), kept
//     only as an HMAC as well, which the registrant gets and verification
//     needs: the code proves the mailbox, the token the registrant.
//   - [User.Reregister] replaces the pending registration of an unverified
//     user (password, code, token), so that nobody can squat an address by
//     registering it first; at most once per [CodeResendInterval].
//   - [User.Verify] accepts the current code with the current token once. A
//     wrong code or token counts as a failed attempt (recorded as
//     [authevents.CodeVerificationFailed]) and gives [ErrInvalidCode]; an
//     expired code with the right token gives [ErrCodeExpired]; after
//     [MaxCodeAttempts] (5) wrong tries the code is dead and every try gives
//     [ErrTooManyAttempts] until a new code is requested.
//   - [User.RequestNewCode] issues a new code to an unverified user, at most
//     once per [CodeResendInterval] (60 s, counted from the last code
//     issued); the old code stops working. Too early gives
//     [ErrResendTooSoon], which is not the caller's fault: nothing is
//     recorded and nothing is sent.
//   - [User.Authenticate] lets only verified users in: a wrong password
//     gives [ErrInvalidCredentials], a right one on an unverified account
//     [ErrNotVerified]. The password is checked first, so the answer tells
//     nothing about an account to whoever does not know its password.
//   - [User.ChangePassword] needs the current password and a new one that
//     differs from it and from the email address; it records
//     [authevents.PasswordChanged].
//
// Time comes from the [aggregate.Clock] and codes from the [CodeGenerator]
// given to [NewFactory], so tests are deterministic.
//
// # Errors
//
// The exported Err values are sentinels for errors.Is; the HTTP port maps
// each to a status (ErrInvalidCode and ErrCodeExpired 400, ErrTooManyAttempts
// 429, ErrNotVerified 403, ErrInvalidCredentials 401, ErrEmailTaken and
// ErrAlreadyVerified 409). Errors about one input field are
// [*valueobject.Error] values naming it ("currentPassword", "newPassword").
//
// # Persistence
//
// The user is state-stored: [User.Snapshot] returns its whole state and
// [Factory.Unmarshal] rebuilds it, Init'ed and without events, for the
// adapter to [aggregate.Restore] at the stored version. Every change,
// failed code attempts included, records an event, so every change moves the
// version and concurrent writers conflict instead of overwriting each other.
package domain
