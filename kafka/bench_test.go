package kafka_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/postgres"
)

// benchPartitions is the partition count of the benchmark topic: 4, or
// KAFKA_BENCH_PARTITIONS. Consumers handle partitions concurrently and
// each partition's events one after the other, so it bounds the
// parallelism of every variant.
func benchPartitions() int32 {
	if v, err := strconv.Atoi(os.Getenv("KAFKA_BENCH_PARTITIONS")); err == nil && v > 0 {
		return int32(v)
	}
	return 4
}

// BenchmarkKafkaConsume measures how many events per second one consumer
// takes off a 4-partition topic (see benchPartitions) that already holds
// b.N events: the raw watermill-kafka subscriber (receive + ack); a
// dddkit handler registered with [eventbus.Handle] (decode, retry,
// dead letters, panic recovery, metadata context; one message at a
// time); one registered with [eventbus.HandleOnce] and the PostgreSQL
// inbox, which on Kafka applies a partition's events in batches (one
// transaction per batch of up to 500 events: the inbox rows, commit);
// the same with an INSERT per event in the batch's transaction (the
// first API the documentation shows, with a write of its own: one round
// trip per event), the same with MaxBatch 1 (one transaction per event,
// as before batching), and with that INSERT queued with postgres.QueueExec
// (one round trip per batch); and a
// projection into a PostgreSQL read model subscribed on a router (see
// benchProjection).
// The timer runs from the first event handled to the last, so
// consumer-group joins are not counted.
//
//	make bench BENCH=KafkaConsume
func BenchmarkKafkaConsume(b *testing.B) {
	kafkatest.Brokers(b)
	b.Run("raw-watermill-kafka", func(b *testing.B) {
		benchConsume(b, func(b *testing.B, k *kafkaBundle, tick func()) func() {
			cfg := wmkafka.DefaultSaramaSubscriberConfig()
			cfg.Version = kafka.DefaultVersion
			cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
			sub, err := wmkafka.NewSubscriber(wmkafka.SubscriberConfig{
				Brokers:               kafkatest.Brokers(b),
				Unmarshaler:           wmkafka.DefaultMarshaler{},
				OverwriteSaramaConfig: cfg,
				ConsumerGroup:         "raw-" + k.topic,
			}, nil)
			if err != nil {
				b.Fatal(err)
			}
			ch, err := sub.Subscribe(context.Background(), k.topic)
			if err != nil {
				b.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for msg := range ch {
					msg.Ack()
					tick()
				}
			}()
			return func() { _ = sub.Close(); <-done }
		})
	})
	b.Run("dddkit-handler", func(b *testing.B) {
		benchConsume(b, func(b *testing.B, k *kafkaBundle, tick func()) func() {
			r := k.router(b, nil)
			if err := eventbus.Handle(r, "plain-"+k.topic, func(context.Context, orderPlaced, aggregate.Envelope) error {
				tick()
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			return runBench(b, r)
		})
	})
	b.Run("dddkit-handler-inbox", func(b *testing.B) {
		benchConsume(b, func(b *testing.B, k *kafkaBundle, tick func()) func() {
			pg := setupPG(b)
			r := k.router(b, nil)
			if err := eventbus.HandleOnce(r, "inbox-"+k.topic, pg.inbox, func(context.Context, orderPlaced, aggregate.Envelope) error {
				tick()
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			return runBench(b, r)
		})
	})
	for _, v := range []struct {
		name     string
		maxBatch int
	}{{"dddkit-handler-inbox-pg-write", 0}, {"dddkit-handler-inbox-pg-write-unbatched", 1}} {
		b.Run(v.name, func(b *testing.B) {
			benchConsume(b, func(b *testing.B, k *kafkaBundle, tick func()) func() {
				pg := setupPG(b)
				r, err := eventbus.NewRouter(k.client, k.reg, &eventbus.RouterConfig{Logger: testLogger(), DeadLetterTopic: k.deadLetter, MaxBatch: v.maxBatch})
				if err != nil {
					b.Fatal(err)
				}
				if err := eventbus.HandleOnce(r, "write-"+k.topic, pg.inbox, func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
					tick()
					tx, _ := postgres.TxFromContext(ctx)
					_, err := tx.Exec(ctx, `INSERT INTO effects (event_id, aggregate_id, amount) VALUES ($1, $2, $3)`, env.ID, env.AggregateID, e.Amount)
					return err
				}); err != nil {
					b.Fatal(err)
				}
				return runBench(b, r)
			})
		})
	}
	b.Run("dddkit-handler-inbox-pg-queued", func(b *testing.B) {
		benchConsume(b, func(b *testing.B, k *kafkaBundle, tick func()) func() {
			pg := setupPG(b)
			r := k.router(b, nil)
			if err := eventbus.HandleOnce(r, "queued-"+k.topic, pg.inbox, func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
				tick()
				return postgres.QueueExec(ctx, `INSERT INTO effects (event_id, aggregate_id, amount) VALUES ($1, $2, $3)`, env.ID, env.AggregateID, e.Amount)
			}); err != nil {
				b.Fatal(err)
			}
			return runBench(b, r)
		})
	})
	b.Run("dddkit-projection-pg", func(b *testing.B) { benchConsume(b, benchProjection) })
}

func runBench(b *testing.B, r *eventbus.Router) (stop func()) {
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	<-r.Running()
	return func() {
		if err := r.Close(); err != nil {
			b.Error(err)
		}
		if err := <-done; err != nil {
			b.Error(err)
		}
	}
}

// benchConsume fills a new topic with b.N events, starts the consumer that
// consume builds and times it from the first event to the last.
func benchConsume(b *testing.B, consume func(b *testing.B, k *kafkaBundle, tick func()) (stop func())) {
	b.StopTimer()
	k := setupKafka(b, benchPartitions())
	produce(b, k, b.N)

	var n atomic.Int64
	first, last := make(chan struct{}), make(chan struct{})
	total := int64(b.N)
	tick := func() {
		switch n.Add(1) {
		case 1:
			close(first)
			if total == 1 {
				close(last)
			}
		case total:
			close(last)
		}
	}
	stop := consume(b, k, tick)
	defer stop()
	timeout := time.After(5 * time.Minute)
	select {
	case <-first:
	case <-timeout:
		b.Fatal("no event consumed")
	}
	start := time.Now()
	b.StartTimer()
	select {
	case <-last:
	case <-timeout:
		b.Fatalf("consumed %d of %d", n.Load(), total)
	}
	b.StopTimer()
	if el := time.Since(start); b.N > 1 && el > 0 {
		b.ReportMetric(float64(b.N-1)/el.Seconds(), "events/s")
	}
}

// produce writes n events of 64 aggregates to k.topic in batches of
// 1,000 through the client's producer (a test set-up, not the subject).
func produce(b *testing.B, k *kafkaBundle, n int) {
	b.Helper()
	pub := k.client.Publisher()
	batch := make([]*message.Message, 0, 1000)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if err := pub.Publish(k.topic, batch...); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for i := range n {
		msg, err := k.reg.Encode(order(fmt.Sprintf("o-%d", i%64), i))
		if err != nil {
			b.Fatal(err)
		}
		batch = append(batch, msg)
		if len(batch) == cap(batch) {
			flush()
		}
	}
	flush()
}
