package postgres_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if runChild() { // the relay process of the fault test (fault_test.go)
		return
	}
	if runDeadlineChild() { // the scheduling process of deadline_test.go
		return
	}
	goleak.VerifyTestMain(m,
		// sarama's metrics library starts one global ticker goroutine.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}
