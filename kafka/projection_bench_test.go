package kafka_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/projection"
)

// benchProjection is the "dddkit-projection-pg" variant of
// BenchmarkKafkaConsume: a projection whose handler inserts a read-model
// row per event in PostgreSQL, run by a [kafka.ProjectionConsumer] with
// the PostgreSQL inbox (one transaction per batch of up to 500 events
// of a partition: the inbox rows and the read-model rows).
func benchProjection(b *testing.B, k *kafkaBundle, tick func()) (stop func()) {
	pg := setupPG(b)
	p, err := projection.New("projection-"+k.topic, k.reg)
	if err != nil {
		b.Fatal(err)
	}
	var calls atomic.Int64
	apply := applyOrder(&calls)
	if err := projection.On(p, func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
		if err := apply(ctx, e, env); err != nil {
			return err
		}
		tick()
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	c, err := kafka.NewProjectionConsumer(k.client, p, pg.inbox, &eventbus.BatchConfig{Logger: testLogger(), DeadLetterTopic: k.deadLetter})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
		if n := pg.count(b, `SELECT count(*) FROM effects`); n < b.N {
			b.Errorf("read model has %d rows, want %d", n, b.N)
		}
	}
}
