package kafka_test

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/kafka"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama's metrics registry (go-metrics) starts one ticker
		// goroutine per process on first use and never stops it.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

// testLogger discards log lines unless KAFKA_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("KAFKA_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is the client configuration of the tests: the test broker,
// quick commits so that restart tests need not wait.
func testConfig(t testing.TB) *kafka.Config {
	return &kafka.Config{
		Brokers:         kafkatest.Brokers(t),
		ClientID:        "dddkit-kafka-test",
		CommitInterval:  100 * time.Millisecond,
		NackResendSleep: 50 * time.Millisecond,
		Logger:          testLogger(),
	}
}

// newClient returns a client on the test broker, closed when the test
// ends, or skips the test without one.
func newClient(t testing.TB) *kafka.Client {
	t.Helper()
	c, err := kafka.NewClient(testConfig(t))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, c.Close()) })
	return c
}
