package wire

import (
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
)

// HeaderEventVersion holds the schema version of the payload: "1", "2",
// ... A message without it carries version 1, the version of every event
// type that never changed its shape.
//
// Producers take the version from the event registry when they encode the
// payload (aggregate.Versioned of the event type); consumers (the eventbus
// codec) upcast older payloads to the version their Go type has today.
const HeaderEventVersion = "event_version"

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
