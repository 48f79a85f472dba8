package wire

import (
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
)

// HeaderEventVersion holds the schema version of the payload: "1", "2",
// ... A message without it carries version 1, the version of every event
// type that never changed its shape.
//
// Producers that have the Go value of the event (the outbox writer inside
// the repository's transaction, the eventbus publisher) take the version
// from [EventVersion] and send it; consumers (the eventbus codec) upcast
// older payloads to the version their Go type has today.
const HeaderEventVersion = "event_version"

// Versioned is implemented by event payloads whose schema has evolved past
// version 1:
//
//	func (UserRegistered) EventVersion() int { return 2 }
type Versioned interface {
	EventVersion() int
}

// EventVersion returns the schema version of e: e.EventVersion() when e
// implements [Versioned] and that is at least 1, else 1.
func EventVersion(e aggregate.Event) int {
	if v, ok := e.(Versioned); ok {
		if n := v.EventVersion(); n >= 1 {
			return n
		}
	}
	return 1
}

// SetEventVersion writes version into md as [HeaderEventVersion]; version
// 1 is written too, so that a reader never has to guess.
func SetEventVersion(md message.Metadata, version int) {
	md[HeaderEventVersion] = strconv.Itoa(version)
}

// ParseEventVersion reads [HeaderEventVersion] from md: 1 when the header
// is absent, an error when it is not a positive integer.
func ParseEventVersion(md message.Metadata) (int, error) {
	v := md.Get(HeaderEventVersion)
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("wire: header %q: %q is not a positive integer", HeaderEventVersion, v)
	}
	return n, nil
}
