package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

// Message is a consumed record.
type Message struct {
	Partition int32
	Offset    int64
	Key       string
	Value     []byte
	Headers   map[string]string
}

// ReadAll returns every record of topic, partition by partition in offset
// order, up to the high-water marks at the time of the call.
func ReadAll(t testing.TB, brokers []string, topic string) []Message {
	t.Helper()
	cfg := Config(t)
	cfg.Consumer.Fetch.Default = 4 << 20
	client, parts := partitions(t, brokers, topic, cfg)
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("kafkatest: consumer: %v", err)
	}
	defer consumer.Close()
	var out []Message
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("kafkatest: offset of %s/%d: %v", topic, p, err)
		}
		if hwm == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("kafkatest: consume %s/%d: %v", topic, p, err)
		}
		timeout := time.NewTimer(60 * time.Second)
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				h := make(map[string]string, len(m.Headers))
				for _, rh := range m.Headers {
					h[string(rh.Key)] = string(rh.Value)
				}
				out = append(out, Message{Partition: p, Offset: m.Offset, Key: string(m.Key), Value: m.Value, Headers: h})
				done = m.Offset >= hwm-1
			case err := <-pc.Errors():
				t.Fatalf("kafkatest: consume %s/%d: %v", topic, p, err)
			case <-timeout.C:
				t.Fatalf("kafkatest: partition %s/%d not read up to %d within 60s", topic, p, hwm)
			}
		}
		timeout.Stop()
		_ = pc.Close()
	}
	return out
}

// WaitForTopic waits until the topic's metadata lists a leader for every
// partition (topics are created asynchronously).
func WaitForTopic(ctx context.Context, brokers []string, topic string, cfg *sarama.Config) error {
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	for {
		if err := client.RefreshMetadata(topic); err == nil {
			parts, err := client.Partitions(topic)
			if err == nil && len(parts) > 0 {
				ok := true
				for _, p := range parts {
					if _, err := client.Leader(topic, p); err != nil {
						ok = false
					}
				}
				if ok {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafkatest: topic %s not ready: %w", topic, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ProducerIDs returns the distinct producer IDs of the record batches of
// topic, in ascending order: every partition from its first offset, at
// most 4 MiB of each. The broker gives every idempotent producer an ID of
// its own, so this is the set of producers that wrote to the topic.
func ProducerIDs(t testing.TB, brokers []string, topic string) []int64 {
	t.Helper()
	client, parts := partitions(t, brokers, topic, Config(t))
	defer client.Close()
	seen := map[int64]bool{}
	for _, p := range parts {
		leader, err := client.Leader(topic, p)
		if err != nil {
			t.Fatalf("kafkatest: leader of %s/%d: %v", topic, p, err)
		}
		req := &sarama.FetchRequest{Version: 4, MaxWaitTime: 100, MinBytes: 1, MaxBytes: 4 << 20}
		req.AddBlock(topic, p, 0, 4<<20, -1)
		resp, err := leader.Fetch(req)
		if err != nil {
			t.Fatalf("kafkatest: fetch %s/%d: %v", topic, p, err)
		}
		block := resp.GetBlock(topic, p)
		if block == nil || !errors.Is(block.Err, sarama.ErrNoError) {
			t.Fatalf("kafkatest: fetch %s/%d: no block or error %v", topic, p, block)
		}
		for _, rs := range block.RecordsSet {
			if rs.RecordBatch != nil && !rs.RecordBatch.Control {
				seen[rs.RecordBatch.ProducerID] = true
			}
		}
	}
	ids := make([]int64, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// partitions connects to brokers and returns the client (close it) and
// the partitions of topic.
func partitions(t testing.TB, brokers []string, topic string, cfg *sarama.Config) (sarama.Client, []int32) {
	t.Helper()
	client, err := sarama.NewClient(brokers, cfg)
	if err != nil {
		t.Fatalf("kafkatest: client: %v", err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		_ = client.Close()
		t.Fatalf("kafkatest: partitions of %s: %v", topic, err)
	}
	return client, parts
}
