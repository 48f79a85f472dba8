// Command producerbench measures two Go Kafka producers side by side on
// one broker: sarama's AsyncProducer (the producer of dddkit's kafka
// package, and the baseline of BenchmarkRelayThroughput) and franz-go's
// kgo client, both with the safety settings of the relay (acks from all
// in-sync replicas, the idempotent producer, one produce request in
// flight per broker, Java's murmur2 partitioning, no compression). Both
// send the same records, built before the clock starts: keyed by 5,000
// aggregate IDs, with the headers the relay writes (internal/wire) and a
// small JSON payload, to a new topic of 6 partitions. It prints events/s and
// the processor time per event of this process and of the broker (the
// java processes, read from /proc as dddkit's benchmarks do), round by
// round, alternating the producers.
//
// It is a module of its own so that franz-go is no dependency of dddkit;
// see BENCHMARKS.md ("Issue 13, nineteenth pass"):
//
//	scripts/testenv.sh bash -c 'cd scripts/producerbench && GOWORK=off go run . -brokers "$TEST_KAFKA_BROKERS"'
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/internal/uuidv7"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/kafka"
)

func main() {
	brokers := flag.String("brokers", os.Getenv("TEST_KAFKA_BROKERS"), "bootstrap brokers, comma-separated")
	n := flag.Int("n", 100_000, "records per round")
	rounds := flag.Int("rounds", 5, "rounds of each producer (after one warm-up round each)")
	flag.Parse()
	if *brokers == "" {
		log.Fatal("producerbench: -brokers (or TEST_KAFKA_BROKERS) is empty")
	}
	bs := strings.Split(*brokers, ",")
	recs := records(*n)
	sp, err := newSarama(bs)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = sp.Close() }()
	fp, err := kgo.NewClient(kgo.SeedBrokers(bs...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent writes are kgo's default
		kgo.MaxProduceRequestsInflightPerBroker(1),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)), // murmur2, as Java's
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		log.Fatal(err)
	}
	defer fp.Close()
	for r := range *rounds + 1 {
		for _, p := range []struct {
			name    string
			prepare func(topic string, recs []record) (func() error, error)
		}{{"sarama", sp.prepare}, {"franz-go", func(topic string, recs []record) (func() error, error) { return prepareFranz(fp, topic, recs) }}} {
			topic, err := newTopic(bs)
			if err != nil {
				log.Fatal(err)
			}
			run, err := p.prepare(topic, recs)
			if err != nil {
				log.Fatalf("producerbench: %s: %v", p.name, err)
			}
			cpu0, start := testinfra.ReadCPU(), time.Now()
			if err := run(); err != nil {
				log.Fatalf("producerbench: %s: %v", p.name, err)
			}
			took := time.Since(start)
			cpu := testinfra.ReadCPU().Since(cpu0)
			label := fmt.Sprintf("round %d", r)
			if r == 0 {
				label = "warm-up"
			}
			fmt.Printf("%-8s %-8s %9.0f events/s  %.2f cpu-µs/event  %.2f broker-µs/event\n", label, p.name,
				float64(len(recs))/took.Seconds(), perEvent(cpu.Self, len(recs)), perEvent(cpu.Broker, len(recs)))
		}
	}
}

// record is one event as the relay sends it.
type record struct {
	key, value []byte
	headers    map[string]string
}

// records returns n events of 5,000 aggregates, each with the headers
// the relay writes (wire.ToMessage, the wire contract).
func records(n int) []record {
	out := make([]record, n)
	now := time.Now()
	for i := range out {
		env := aggregate.Envelope{ID: uuidv7.New().String(), Name: "cart.ItemAdded", AggregateType: "cart",
			AggregateID: "a" + strconv.Itoa(i%5000), Version: int64(i/5000 + 1), OccurredAt: now}
		payload := []byte(`{"sku":"sku-` + strconv.Itoa(i) + `","quantity":2}`)
		m := wire.ToMessage(env, "urn:dddkit:test", payload, 1)
		out[i] = record{key: []byte(env.AggregateID), value: payload, headers: m.Metadata}
	}
	return out
}

func saramaConfig() *sarama.Config { return testinfra.RawProducerConfig(kafka.DefaultVersion) }

// newTopic creates a topic of 6 partitions.
func newTopic(brokers []string) (string, error) {
	adm, err := sarama.NewClusterAdmin(brokers, saramaConfig())
	if err != nil {
		return "", err
	}
	defer func() { _ = adm.Close() }()
	topic := fmt.Sprintf("producerbench-%d", time.Now().UnixNano())
	if err := adm.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 6, ReplicationFactor: 1}, false); err != nil {
		return "", err
	}
	return topic, nil
}

type saramaProducer struct{ sarama.AsyncProducer }

func newSarama(brokers []string) (saramaProducer, error) {
	ap, err := sarama.NewAsyncProducer(brokers, saramaConfig())
	return saramaProducer{ap}, err
}

// prepare builds the messages of recs to topic and warms the topic (see
// warmTopic); run sends them and returns when all are acknowledged.
func (p saramaProducer) prepare(topic string, recs []record) (run func() error, err error) {
	msgs := make([]*sarama.ProducerMessage, len(recs))
	for i, r := range recs {
		h := make([]sarama.RecordHeader, 0, len(r.headers))
		for k, v := range r.headers {
			h = append(h, sarama.RecordHeader{Key: []byte(k), Value: []byte(v)})
		}
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Key: sarama.ByteEncoder(r.key), Value: sarama.ByteEncoder(r.value), Headers: h}
	}
	go func() {
		for i := range warmRecords {
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(strconv.Itoa(i)), Value: sarama.StringEncoder("{}")}
		}
	}()
	if err := p.wait(warmRecords); err != nil {
		return nil, err
	}
	return func() error {
		go func() {
			for _, m := range msgs {
				p.Input() <- m
			}
		}()
		return p.wait(len(msgs))
	}, nil
}

func (p saramaProducer) wait(n int) error {
	for range n {
		select {
		case <-p.Successes():
		case perr := <-p.Errors():
			return perr
		}
	}
	return nil
}

// prepareFranz is saramaProducer.prepare for a kgo client.
func prepareFranz(cl *kgo.Client, topic string, recs []record) (run func() error, err error) {
	rs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		h := make([]kgo.RecordHeader, 0, len(r.headers))
		for k, v := range r.headers {
			h = append(h, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
		rs[i] = &kgo.Record{Topic: topic, Key: r.key, Value: r.value, Headers: h}
	}
	ctx := context.Background()
	warm := make([]*kgo.Record, warmRecords)
	for i := range warm {
		warm[i] = &kgo.Record{Topic: topic, Key: []byte(strconv.Itoa(i)), Value: []byte("{}")}
	}
	if err := cl.ProduceSync(ctx, warm...).FirstErr(); err != nil {
		return nil, err
	}
	return func() error { return sendFranz(ctx, cl, rs) }, nil
}

func sendFranz(ctx context.Context, cl *kgo.Client, rs []*kgo.Record) error {
	var (
		left  atomic.Int64
		first atomic.Pointer[error]
		done  = make(chan struct{})
	)
	left.Store(int64(len(rs)))
	for _, r := range rs {
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				first.CompareAndSwap(nil, &err)
			}
			if left.Add(-1) == 0 {
				close(done)
			}
		})
	}
	<-done
	if err := first.Load(); err != nil {
		return *err
	}
	return nil
}

// warmRecords small records go to a new topic before the clock starts:
// the first large appends to a new topic stall the broker once (see
// warmTopic in dddkit's postgres benchmarks).
const warmRecords = 6000

func perEvent(d time.Duration, n int) float64 { return float64(d.Nanoseconds()) / 1e3 / float64(n) }
