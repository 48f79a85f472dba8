// Package outboxtest is the test suite every [outbox.Source] must pass,
// run through the [outbox.Relay] that publishes from it: order per
// aggregate, waking on a write, a poison event that fails without
// blocking the other aggregates (across topics too) while holding back
// its own, publisher outages, several relays with one leader and failover
// between them, Run and Flush, shutdown with a batch in flight, batches
// published at once without one aggregate in two of them, Fetch beside
// the batches in flight, the
// schema version header, refused writes and Stats; and, for a Source
// that schedules, deadlines: fired when due and not before, cancelled and
// replaced by key, holding nothing back, published in due order.
//
// dddkit runs it against [outbox.Memory] and against the PostgreSQL
// outbox of package postgres; a third-party Source runs it from its own
// tests:
//
//	func TestSource(t *testing.T) {
//		outboxtest.Run(t, func(t *testing.T) *outboxtest.Harness {
//			reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:service:mine"})
//			src := newMySource(t, reg)
//			return &outboxtest.Harness{Source: src, Registry: reg, Write: src.Write, Retry: src.RetryFailed}
//		})
//	}
//
// [Recorder] (a publisher that records and can refuse) and [OrderCheck]
// (the order guarantee, checked on what a consumer received) serve tests
// of a Source's own features as well.
package outboxtest

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/deadline"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
)

// Harness is what the suite needs of the Source under test.
type Harness struct {
	// Source is the outbox under test, empty. The suite does not close
	// it; register what it needs closed with t.Cleanup.
	Source outbox.Source

	// Registry is the event registry Source encodes events with. The
	// suite registers its own event types in it (their names start with
	// "outboxtest."). Its topic rule must give the aggregate types "cart"
	// and "order" two different topics, as the default rule does.
	Registry *eventbus.Registry

	// Write commits events to Source, all or none, as a repository's save
	// does. It returns the Source's error when the Source refuses them.
	Write func(ctx context.Context, events ...aggregate.Envelope) error

	// Retry puts every failed event of Source back to pending with its
	// attempts reset, as an operator does once the cause is fixed, and
	// returns how many it changed.
	Retry func(ctx context.Context) (int, error)

	// Replica returns another Source on the same outbox, as another
	// replica of the service (another process) opens it; the suite runs
	// one relay on each. Nil means the relays share Source.
	Replica func(t *testing.T) outbox.Source

	// Scheduler schedules deadlines in Source (usually Source itself:
	// *outbox.Memory and *postgres.Outbox are both). Nil skips the cases
	// of deadlines, for a Source that does not schedule.
	Scheduler deadline.Scheduler

	// Timeout bounds each wait for the relay. 0 means 30s.
	Timeout time.Duration
}

// Run runs the suite as parallel subtests of t. newHarness is called once
// per subtest and must return a Harness on an outbox of that subtest's
// own.
func Run(t *testing.T, newHarness func(t *testing.T) *Harness) {
	tests := []struct {
		name string
		fn   func(s *suite)
	}{
		{"PublishesInOrderPerAggregate", testOrder},
		{"MessageCarriesTheEventAndItsSchemaVersion", testMessage},
		{"WakesOnWrite", testWakes},
		{"PoisonEventFailsWithoutBlockingOthers", testPoison},
		{"FailureHoldsItsAggregateAcrossTopics", testAcrossTopics},
		{"OutageIsRetried", testOutage},
		{"OutageEndsTheBatch", testOutageFlush},
		{"SeveralRelaysOneLeader", testOneLeader},
		{"FailoverWhenTheLeaderStops", testFailover},
		{"RunTwiceAndStop", testRunTwice},
		{"FinishesInFlightBatchOnShutdown", testInFlight},
		{"RefusesInvalidEvents", testRefuses},
		{"Stats", testStats},
		{"Flush", testFlush},
		{"PipelinesBatchesKeepingOrder", testPipeline},
		{"FetchLeavesOutInFlight", testFetchLeavesOutInFlight},
		{"FetchBesideInFlightBothSides", testFetchBesideInFlightBothSides},
		{"FetchBesideRowsNotFetched", testFetchBesideRowsNotFetched},
		{"DeadlineFiresWhenDue", testDeadlineFires},
		{"DeadlineCancelAndReplaceByKey", testDeadlineCancelReplace},
		{"DeadlineHoldsNothingBack", testDeadlineHoldsNothingBack},
		{"DeadlinesInDueOrder", testDeadlinesInDueOrder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if h == nil || h.Source == nil || h.Registry == nil || h.Write == nil || h.Retry == nil {
				t.Fatal("outboxtest: the Harness needs Source, Registry, Write and Retry")
			}
			if h.Timeout == 0 {
				h.Timeout = 30 * time.Second
			}
			if h.Scheduler == nil && strings.HasPrefix(tc.name, "Deadline") {
				t.Skip("outboxtest: the Harness has no Scheduler")
			}
			register(t, h.Registry)
			tc.fn(&suite{t: t, h: h, log: testLogger()})
		})
	}
}

// testLogger logs the relays' warnings to stderr when OUTBOXTEST_LOG is
// set, and discards them otherwise.
func testLogger() *slog.Logger {
	if os.Getenv("OUTBOXTEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
