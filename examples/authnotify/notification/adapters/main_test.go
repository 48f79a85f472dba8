package adapters_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops the queues it starts: no worker goroutine may outlive
// the tests.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
