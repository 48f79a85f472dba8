package outbox_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/retry"
)

func TestRelayConfigValidate(t *testing.T) {
	t.Parallel()
	err := (&outbox.RelayConfig{BatchSize: -1, MaxInFlight: -1, PollInterval: -1, ShutdownTimeout: -1, Retry: retry.Policy{MaxAttempts: -2}}).Validate()
	require.ErrorContains(t, err, "outbox: RelayConfig.MaxInFlight is -1, must be >= 0")
	require.ErrorContains(t, err, "outbox: RelayConfig.BatchSize is -1, must be >= 0")
	require.ErrorContains(t, err, "outbox: RelayConfig.PollInterval is -1ns, must be >= 0")
	require.ErrorContains(t, err, "outbox: RelayConfig.ShutdownTimeout is -1ns, must be >= 0")
	require.ErrorContains(t, err, "outbox: RelayConfig.Retry: retry: Policy.MaxAttempts is -2, must be >= 0")
	require.ErrorContains(t, (&outbox.RelayConfig{BatchSize: 10001}).Validate(), "above the limit of 10000")
	require.ErrorContains(t, (&outbox.RelayConfig{MaxInFlight: 65}).Validate(), "MaxInFlight 65 is above the limit of 64")
	require.NoError(t, (*outbox.RelayConfig)(nil).Validate())
	require.NoError(t, (&outbox.RelayConfig{}).Validate())
}

func TestNewRelayReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := outbox.NewRelay(nil, nil, nil, &outbox.RelayConfig{BatchSize: 20000})
	require.ErrorContains(t, err, "nil Source")
	require.ErrorContains(t, err, "nil publisher")
	require.ErrorContains(t, err, "nil Registry")
	require.ErrorContains(t, err, "BatchSize")

	m, reg := newMemory(t)
	relay, err := outbox.NewRelay(m, &outboxtest.Recorder{}, reg, nil)
	require.NoError(t, err)
	require.False(t, relay.IsLeader())

	// A producer needs the CloudEvents source of its service.
	_, err = outbox.NewRelay(m, &outboxtest.Recorder{}, eventbus.NewRegistry(nil), nil)
	require.ErrorIs(t, err, eventbus.ErrInvalidSource)
	require.ErrorContains(t, err, "outbox: NewRelay: eventbus: invalid RegistryConfig.Source: it is empty")
	require.ErrorContains(t, err, `"urn:service:auth"`)
	_, err = outbox.NewRelay(m, &outboxtest.Recorder{}, eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "my service"}), nil)
	require.ErrorIs(t, err, eventbus.ErrInvalidSource)
}
