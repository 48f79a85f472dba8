package projection_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if runChild() { // the child process of the crash tests (crash_test.go)
		return
	}
	goleak.VerifyTestMain(m,
		// sarama's metrics library starts one global ticker goroutine.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}
