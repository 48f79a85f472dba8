// Package testinfra holds the test helpers of dddkit's own tests that
// are not for users: [Eventually], the latency/freeze [Proxy] and the
// child-process harness. Users' helpers are public: dddkittest/pgtest (a
// PostgreSQL schema per test) and dddkittest/kafkatest (Kafka topics per
// test); internal/testbroker runs a private broker a test may restart.
package testinfra

import (
	"fmt"
	"testing"
	"time"
)

// Eventually polls cond every 10ms until it returns true or timeout
// passes, then fails the test with msg. It is for waiting on asynchronous
// effects (a message consumed, a row published), not for timing goals.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("testinfra: gave up after %s: %s", timeout, fmt.Sprintf(msg, args...))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
