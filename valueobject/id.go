package valueobject

import (
	"fmt"
	"time"

	"github.com/dddkit/dddkit/internal/uuidv7"
)

const fieldID = "id"

// ID identifies an aggregate or an event: a 128-bit RFC 9562 UUID. [NewID]
// makes version 7 UUIDs, which begin with a millisecond timestamp, so IDs
// made later sort later, both as text and as bytes; that keeps database
// indexes compact and outbox rows roughly in creation order.
//
// ID is comparable and can be used as a map key. The zero ID is the nil
// UUID, which [ParseID] never returns; use it as "no ID yet".
type ID struct {
	u uuidv7.UUID
}

// NewID returns a new version 7 ID for the current time. IDs made by one
// process are strictly increasing.
func NewID() ID { return ID{u: uuidv7.New()} }

// ParseID parses the canonical text form of a UUID,
// xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, with hex digits in either case
// (the RFC asks parsers to accept both; [ID.String] prints lower case).
// Other forms (braces, "urn:uuid:", no hyphens) and surrounding whitespace
// are rejected.
//
// Any RFC 9562 UUID is accepted, of any defined version 1 to 8, not only
// version 7: IDs may come from systems that use version 4, and refusing
// them buys nothing. Rejected are the nil UUID, the max UUID and anything
// else whose variant bits are not the RFC's 10, and undefined versions 0
// and 9 to 15.
//
// Errors are [*Error] with Field "id" wrapping [ErrEmpty] or [ErrInvalid].
func ParseID(s string) (ID, error) {
	if s == "" {
		return ID{}, newError(fieldID, ErrEmpty, "must not be empty")
	}
	u, err := uuidv7.Parse(s)
	if err != nil {
		return ID{}, newError(fieldID, ErrInvalid, "must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx")
	}
	switch {
	case u.IsZero():
		return ID{}, newError(fieldID, ErrInvalid, "must not be the nil UUID")
	case u[8]&0xc0 != 0x80:
		return ID{}, newError(fieldID, ErrInvalid, "must be an RFC 9562 UUID (variant bits 10)")
	case u.Version() < 1 || u.Version() > 8:
		return ID{}, newError(fieldID, ErrInvalid, fmt.Sprintf("UUID version %d is not defined, want 1 to 8", u.Version()))
	}
	return ID{u: u}, nil
}

// String returns the canonical lower-case text form, or "" for the zero ID.
func (id ID) String() string {
	if id.IsZero() {
		return ""
	}
	return id.u.String()
}

// IsZero reports whether id is the zero ID (the nil UUID).
func (id ID) IsZero() bool { return id.u.IsZero() }

// Version returns the UUID version: 7 for IDs made by [NewID], 0 for the
// zero ID.
func (id ID) Version() int { return id.u.Version() }

// Time returns the creation time embedded in a version 7 ID, with
// millisecond precision. For IDs of other versions, which carry no Unix
// timestamp, it returns the zero time.Time.
func (id ID) Time() time.Time {
	if id.u.Version() != 7 {
		return time.Time{}
	}
	return id.u.Time()
}

// MarshalText implements [encoding.TextMarshaler]. The zero ID marshals to
// empty text.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements [encoding.TextUnmarshaler] with [ParseID]. Empty
// text is rejected with [ErrEmpty]; use a *ID field for an optional ID.
func (id *ID) UnmarshalText(text []byte) error {
	v, err := ParseID(string(text))
	if err != nil {
		return err
	}
	*id = v
	return nil
}
