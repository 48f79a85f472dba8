package kafka_test

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/kafka"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	var nilCfg *kafka.Config
	require.ErrorContains(t, nilCfg.Validate(), "Config.Brokers is empty")
	_, err := kafka.NewClient(nil)
	require.ErrorContains(t, err, "Config.Brokers is empty")

	err = (&kafka.Config{
		Brokers:         []string{"a:1", ""},
		Version:         sarama.V0_10_2_0,
		InitialOffset:   5,
		CommitInterval:  -1,
		NackResendSleep: -time.Second,
		Topics:          kafka.TopicDefaults{Partitions: -1, ReplicationFactor: -2, Config: map[string]string{"": "x"}},
	}).Validate()
	for _, want := range []string{"Config.Brokers", "empty entry", "Config.Version 0.10.2.0 is older than 0.11",
		"Config.InitialOffset is 5", "Config.CommitInterval", "Config.NackResendSleep",
		"Config.Topics.Partitions is -1", "Config.Topics.ReplicationFactor is -2", "Config.Topics.Config has an empty key"} {
		require.ErrorContains(t, err, want)
	}
	require.NoError(t, (&kafka.Config{Brokers: []string{"a:1"}, InitialOffset: sarama.OffsetNewest}).Validate())
	require.NoError(t, (&kafka.Config{Brokers: []string{"a:1"}, Topics: kafka.TopicDefaults{ReplicationFactor: kafka.BrokerDefaultReplication}}).Validate())
}

// Configure may tune anything but what the delivery guarantees rest on;
// NewClient checks before it connects, so no broker is needed.
func TestConfigureCannotTurnOffTheGuarantees(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		configure func(*sarama.Config)
		want      string
	}{
		{func(c *sarama.Config) { c.Producer.RequiredAcks = sarama.WaitForLocal }, "Config.Configure: Producer.RequiredAcks must stay WaitForAll"},
		{func(c *sarama.Config) { c.Producer.Idempotent = false }, "Config.Configure: Producer.Idempotent must stay true"},
		{func(c *sarama.Config) { c.Producer.Return.Successes = false }, "Producer.Return.Successes and Producer.Return.Errors must stay true"},
		{func(c *sarama.Config) { c.Net.MaxOpenRequests = 5 }, "MaxOpenRequests"},
		{func(c *sarama.Config) { c.Version = sarama.V0_10_2_0 }, "Idempotent producer requires Version >= V0_11_0_0"},
	} {
		_, err := kafka.NewClient(&kafka.Config{Brokers: []string{"127.0.0.1:1"}, Configure: tc.configure})
		require.ErrorContains(t, err, tc.want)
	}
}
