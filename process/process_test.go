package process_test

import (
	"testing"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/process"
	"github.com/dddkit/dddkit/process/processtest"
)

func TestMemoryStoreSuite(t *testing.T) {
	t.Parallel()
	processtest.Run(t, func(*testing.T) process.Store { return process.NewMemoryStore() })
}

// The payment-timeout scenario in memory: memory transport, outbox,
// relay and store.
func TestTimeoutInMemory(t *testing.T) {
	t.Parallel()
	reg := eventbus.NewRegistry(nil)
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: quiet})
	t.Cleanup(func() { _ = transport.Close() })
	ob, err := outbox.NewMemory(reg)
	if err != nil {
		t.Fatal(err)
	}
	processtest.RunTimeout(t, &processtest.Harness{
		Registry:  reg,
		Transport: transport,
		Store:     process.NewMemoryStore(),
		Outbox:    ob,
		Write:     ob.Append,
		Publisher: transport.Publisher(),
	})
}
