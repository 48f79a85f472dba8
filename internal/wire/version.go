package wire

import (
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"
)

// ParseEventVersion reads the schema version of the payload from md:
// [HeaderEventVersion], or the legacy "event_version"; 1 when neither is
// present (every event type that never changed its shape is at version
// 1), an error when it is not a positive integer.
//
// The version is an extension attribute rather than the CloudEvents
// dataschema: dataschema is a URI of a schema document, which dddkit does
// not publish, and consumers need the version as a number to pick their
// upcasters.
func ParseEventVersion(md message.Metadata) (int, error) {
	v, from := get(md, HeaderEventVersion, legacyEventVersion)
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("wire: header %q: %q is not a positive integer", from, v)
	}
	return n, nil
}
