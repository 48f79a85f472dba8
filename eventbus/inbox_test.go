package eventbus_test

import (
	"context"
	"sync"
	"testing"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/eventbus/eventbustest"
)

// The in-memory inbox passes the inbox suite; it has no transaction, so
// a failing handler's own writes stay (Atomic is false).
func TestMemoryInboxSuite(t *testing.T) {
	t.Parallel()
	eventbustest.RunInbox(t, func(t *testing.T) eventbustest.InboxHarness {
		var mu sync.Mutex
		var effects []string
		return eventbustest.InboxHarness{
			Inbox: eventbus.NewMemoryInbox(),
			Write: func(_ context.Context, key string) error {
				mu.Lock()
				defer mu.Unlock()
				effects = append(effects, key)
				return nil
			},
			Effects: func(testing.TB) []string {
				mu.Lock()
				defer mu.Unlock()
				return append([]string(nil), effects...)
			},
		}
	})
}
