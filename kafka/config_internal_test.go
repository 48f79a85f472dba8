package kafka

import (
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"
)

func TestSaramaConfigDefaultsAndConfigure(t *testing.T) {
	t.Parallel()
	c, err := (&Config{Brokers: []string{"a:1"}}).withDefaults()
	require.NoError(t, err)
	sc, err := c.saramaConfig()
	require.NoError(t, err)
	require.Equal(t, DefaultVersion, sc.Version)
	require.Equal(t, DefaultClientID, sc.ClientID)
	require.Equal(t, sarama.WaitForAll, sc.Producer.RequiredAcks)
	require.True(t, sc.Producer.Idempotent)
	require.Equal(t, 1, sc.Net.MaxOpenRequests)
	require.Equal(t, 10, sc.Producer.Retry.Max)
	require.Zero(t, sc.Producer.Flush.Frequency, "no linger: a request leaves once the previous one is answered")
	require.Equal(t, sarama.OffsetOldest, sc.Consumer.Offsets.Initial)
	require.Equal(t, time.Second, sc.Consumer.Offsets.AutoCommit.Interval)

	var calls int
	c, err = (&Config{
		Brokers: []string{"a:1"}, ClientID: "me", Version: sarama.V4_0_0_0,
		InitialOffset: sarama.OffsetNewest, CommitInterval: time.Minute,
		Configure: func(s *sarama.Config) {
			calls++
			require.Equal(t, "me", s.ClientID, "Configure sees the fields applied")
			s.Producer.Compression = sarama.CompressionLZ4
			s.Producer.Flush.Frequency = 5 * time.Millisecond // Java's linger.ms
		},
	}).withDefaults()
	require.NoError(t, err)
	sc, err = c.saramaConfig()
	require.NoError(t, err)
	require.Equal(t, 1, calls)
	require.Equal(t, sarama.V4_0_0_0, sc.Version)
	require.Equal(t, sarama.OffsetNewest, sc.Consumer.Offsets.Initial)
	require.Equal(t, time.Minute, sc.Consumer.Offsets.AutoCommit.Interval)
	require.Equal(t, sarama.CompressionLZ4, sc.Producer.Compression)
	require.Equal(t, 5*time.Millisecond, sc.Producer.Flush.Frequency)
}
