package eventbus_test

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/dddkit/dddkit/eventbus"
)

// UserSignedUp is an event with json tags: the names on the wire, in the
// catalogue and in the types other teams generate from it.
type UserSignedUp struct {
	UserID   string    `json:"user_id"`
	Email    string    `json:"email"`
	Referrer *string   `json:"referrer,omitempty"`
	At       time.Time `json:"at"`
}

func (UserSignedUp) EventName() string { return "accounts.user_signed_up" }

// The catalogue of a registry, as JSON for code generators of other
// languages; Markdown renders it for people.
func ExampleRegistry_Catalog() {
	reg := eventbus.NewRegistry(nil)
	if err := eventbus.Register[UserSignedUp](reg, eventbus.AggregateType("user")); err != nil {
		fmt.Println(err)
		return
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(reg.Catalog()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// {
	//   "events": [
	//     {
	//       "name": "accounts.user_signed_up",
	//       "schema_version": 1,
	//       "aggregate_type": "user",
	//       "topic": "user.events",
	//       "key": "aggregate ID",
	//       "content_type": "application/json",
	//       "schema": {
	//         "$schema": "https://json-schema.org/draft/2020-12/schema",
	//         "title": "accounts.user_signed_up",
	//         "type": "object",
	//         "properties": {
	//           "at": {
	//             "type": "string",
	//             "format": "date-time"
	//           },
	//           "email": {
	//             "type": "string"
	//           },
	//           "referrer": {
	//             "type": [
	//               "string",
	//               "null"
	//             ]
	//           },
	//           "user_id": {
	//             "type": "string"
	//           }
	//         },
	//         "required": [
	//           "at",
	//           "email",
	//           "user_id"
	//         ]
	//       }
	//     }
	//   ]
	// }
}
