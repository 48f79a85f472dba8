package eventbus_test

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/eventbus/eventbustest"
	"github.com/dddkit/dddkit/internal/testinfra"
)

// testLogger discards log lines unless EVENTBUS_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("EVENTBUS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// kafkaConfig is the transport configuration of the Kafka tests: quick
// commits so that restart tests need not wait.
func kafkaConfig() *eventbus.KafkaConfig {
	return &eventbus.KafkaConfig{
		ClientID:        "dddkit-eventbus-test",
		CommitInterval:  100 * time.Millisecond,
		NackResendSleep: 50 * time.Millisecond,
		Logger:          testLogger(),
	}
}

func newKafkaTransport(t testing.TB) *eventbus.KafkaTransport {
	t.Helper()
	tr, err := eventbus.NewKafkaTransport(testinfra.KafkaBrokers(t), kafkaConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func TestKafkaTransportSuite(t *testing.T) {
	t.Parallel()
	tr := newKafkaTransport(t)
	eventbustest.Run(t, func(t *testing.T) eventbustest.Harness {
		return eventbustest.Harness{
			Transport: tr,
			Topic:     func(t testing.TB) string { return testinfra.Topic(t, 3) },
		}
	})
}
