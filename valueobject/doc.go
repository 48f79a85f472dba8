// Package valueobject holds the value objects that most services built with
// dddkit need, [Email], [ID] and [Password] with its [Hasher], and the one
// error type, [Error], that all of them return.
//
// A value object is an immutable value defined by its content, which can
// only exist in a valid state: the constructor checks the input and either
// returns a value or an error saying which field is wrong and why. Once a
// function holds an [Email], it need not check it again.
//
// The package depends only on the standard library, golang.org/x/crypto
// (for argon2id) and an internal UUID generator, so domain packages can
// import it freely.
//
// # Where value objects sit
//
// A request travels through a dddkit service like this:
//
//	HTTP handler → command → command handler → aggregate method
//	  → domain event → repository.Save (aggregate + outbox, one transaction)
//	  → outbox relay → Kafka
//
// Value objects are built at the very start of that path. The HTTP handler
// (or the command's constructor) turns the raw strings of the request into
// value objects; a command carries an [Email], not a string, so the command
// handler and the aggregate never see malformed input, and the events they
// record, which outlive every later code change in the outbox and on
// Kafka, only ever contain valid values.
//
//	email, err := valueobject.ParseEmail(req.Email)
//	if err != nil {
//		return err // 400 with {"field": "email", "message": "..."}
//	}
//	pw, err := valueobject.NewPassword(req.Password, email.String(), email.Local())
//	...
//	cmd := RegisterUser{ID: valueobject.NewID(), Email: email, Password: pw}
//
// The plain [Password] goes no further than the command handler: it hashes
// it with [Hasher.Hash] and hands the aggregate only the hash string. A
// Password refuses to be printed, logged or serialized, so it cannot slip
// into an event by accident.
//
// # Errors
//
// Every constructor and parser of a value returns an [*Error]. Its Field
// names the input ("email", "id", "password", "passwordHash"; rename with
// [WithField]) and its Reason says, in words fit for an end user, what is
// wrong. It wraps one sentinel ([ErrEmpty], [ErrTooShort], [ErrTooLong],
// [ErrInvalid], [ErrWeakPassword], [ErrUnknownHashFormat],
// [ErrMalformedHash]) for errors.Is. When a command validates several
// fields and joins the errors with errors.Join, [FieldErrors] lists them
// all.
//
// The HTTP layer turns these errors into a 400 response in the
// application/problem+json form of RFC 9457:
//
//	for _, fe := range valueobject.FieldErrors(err) {
//		problem.Errors = append(problem.Errors, FieldError{Field: fe.Field, Message: fe.Reason})
//	}
//
// Two kinds of error are not a client's fault. [ErrPasswordMismatch] is an
// authentication failure (401), and it is returned bare, not as an
// [*Error]. An [*Error] with Field "passwordHash" (wrapping
// [ErrUnknownHashFormat], [ErrMalformedHash] or [ErrEmpty]) means a stored
// hash is broken: that is a server error (500), never a 400. [NewHasher]
// reports bad configuration with a plain error.
//
// # Email
//
// [ParseEmail] accepts the practical subset of RFC 5322 addresses that
// real mail systems deliver to (local@example.com, a.b+tag@mail.example.org)
// and rejects the rest with a precise reason. The domain is lower-cased.
//
// # ID
//
// [ID] is a UUID. [NewID] makes version 7 UUIDs, which start with a
// millisecond timestamp: IDs made later sort later, which keeps database
// indexes compact and makes [ID.Time] tell when an aggregate or event was
// created. [ParseID] accepts any RFC 9562 UUID in canonical text form but
// not the nil UUID.
//
// # Passwords
//
// A [PasswordPolicy] decides which passwords are acceptable; it follows
// NIST SP 800-63B: length limits and a check against trivial passwords
// instead of composition rules. [NewPassword] applies
// [DefaultPasswordPolicy] (8 to 128 characters).
//
// A [Hasher] hashes passwords with argon2id at the OWASP parameters
// ([DefaultArgon2Params]: 19 MiB, 2 iterations, 1 lane) and stores them as
// PHC strings ("$argon2id$v=19$m=19456,t=2,p=1$...$..."), the format other
// argon2 libraries read and write. [Hasher.Verify] takes the parameters from
// the stored hash, so raising them later keeps old hashes valid, and
// [Hasher.NeedsRehash] tells when to replace one after a successful login;
// [Hasher.VerifyAndRehash] does both:
//
//	newHash, err := hasher.VerifyAndRehash(user.PasswordHash, req.Password)
//	if err != nil {
//		return err // ErrPasswordMismatch → 401
//	}
//	if newHash != "" {
//		user.ChangePasswordHash(newHash) // made with the current parameters
//	}
//
// Parameters read from a stored hash are bounded (at most 1 GiB of memory,
// 100 iterations, 255 lanes), so a corrupt or planted hash cannot make
// Verify exhaust the server.
package valueobject
