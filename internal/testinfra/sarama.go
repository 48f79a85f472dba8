package testinfra

import "github.com/IBM/sarama"

// RawProducerConfig is the configuration of the raw sarama async
// producer the relay benchmarks measure dddkit against: the relay's
// safety settings (acks from all in-sync replicas, the idempotent
// producer, one request in flight per broker connection), Java's murmur2
// partitioning, and every success and error returned; everything else
// sarama's defaults.
func RawProducerConfig(version sarama.KafkaVersion) *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = version
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	return sc
}
