package testinfra

import (
	"testing"

	"github.com/IBM/sarama"
	metrics "github.com/rcrowley/go-metrics"
)

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

// Batches counts what a sarama producer sent: records, and the record
// batches (one per partition of a produce request) they went in.
type Batches struct{ Records, Batches int64 }

// ProducerBatches reads them from reg, the MetricRegistry of the
// producer's sarama configuration, while the producer is open (sarama
// unregisters its metrics when it closes); none from a nil reg.
func ProducerBatches(reg metrics.Registry) Batches {
	var n Batches
	if reg == nil {
		return n
	}
	if m, ok := reg.Get("record-send-rate").(metrics.Meter); ok {
		n.Records = m.Count()
	}
	if h, ok := reg.Get("batch-size").(metrics.Histogram); ok {
		n.Batches = h.Count()
	}
	return n
}

// Add returns the sum of n and o.
func (n Batches) Add(o Batches) Batches {
	return Batches{n.Records + o.Records, n.Batches + o.Batches}
}

// Since returns what was sent since before (read from the same registry).
func (n Batches) Since(before Batches) Batches {
	return Batches{n.Records - before.Records, n.Batches - before.Batches}
}

// Report reports the records per batch ("records/batch"): the broker's
// and the producer's work per record falls as batches grow (each batch
// is appended, and answered for, as one).
func (n Batches) Report(b *testing.B) {
	b.Helper()
	if n.Batches > 0 {
		b.ReportMetric(float64(n.Records)/float64(n.Batches), "records/batch")
	}
}
