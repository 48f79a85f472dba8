package app

import (
	"context"
	"strings"
	"time"

	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/valueobject"
)

// ActivityEntry is one line of an account's activity: what happened and
// when.
type ActivityEntry struct {
	// Type is the kind of activity: "registered", "verification_failed",
	// "verified", "code_resent", "password_changed", or, for an event
	// without a name of its own here, the event's name without its module
	// prefix ("password_reset_requested", ...). See [ActivityType].
	Type string
	// At is when the event occurred.
	At time.Time
}

// ActivityReader reads the account activity read model, which a
// projection of the published auth events keeps (eventually consistent:
// an entry appears shortly after its event is published, not in the
// transaction that recorded it).
type ActivityReader interface {
	// List returns the activity of userID, oldest first; none is an
	// empty list.
	List(ctx context.Context, userID string) ([]ActivityEntry, error)
}

// activityTypes names the activity of the events that have a name of
// their own in the API.
var activityTypes = map[string]string{
	authevents.NameUserRegistered:         "registered",
	authevents.NameCodeVerificationFailed: "verification_failed",
	authevents.NameUserVerified:           "verified",
	authevents.NameUserOtpRequested:       "code_resent",
	authevents.NamePasswordChanged:        "password_changed",
}

// ActivityType is the activity type of the event named eventName: its
// name in the API, or else the event name without its module prefix
// ("auth.password_reset_requested" → "password_reset_requested"; event
// names are snake case already).
func ActivityType(eventName string) string {
	if t, ok := activityTypes[eventName]; ok {
		return t
	}
	if _, rest, ok := strings.Cut(eventName, "."); ok {
		return rest
	}
	return eventName
}

// Activity returns the activity of the account UserID (from the access
// token), oldest first.
type Activity struct {
	UserID string
}

// QueryName implements the cqrs naming convention.
func (Activity) QueryName() string { return "auth.activity" }

// Validate checks that UserID is a UUID.
func (q Activity) Validate() error {
	_, err := q.parse()
	return err
}

func (q Activity) parse() (valueobject.ID, error) {
	id, err := valueobject.ParseID(q.UserID)
	return id, invalid(valueobject.WithField(err, "userId"))
}

func (h *handlers) activity(ctx context.Context, q Activity) ([]ActivityEntry, error) {
	id, err := q.parse()
	if err != nil {
		return nil, err
	}
	entries, err := h.Activity.List(ctx, id.String())
	if entries == nil && err == nil {
		entries = []ActivityEntry{}
	}
	return entries, err
}
