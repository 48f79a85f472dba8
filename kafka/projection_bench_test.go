package kafka_test

import (
	"context"
	"testing"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/projection"
)

// benchProjection is the "dddkit-projection-pg" variant of
// BenchmarkKafkaConsume: a projection whose handler inserts a read-model
// row per event in PostgreSQL (queued with postgres.QueueExec),
// subscribed on a router with the PostgreSQL inbox and projection store
// (one transaction per batch of up to 500 events of a partition: the
// inbox rows and the read-model rows).
func benchProjection(b *testing.B, k *kafkaBundle, tick func()) (stop func()) {
	pg := setupPG(b)
	p, err := projection.New("projection-"+k.topic, k.reg)
	if err != nil {
		b.Fatal(err)
	}
	if err := projection.On(p, func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
		tick()
		return postgres.QueueExec(ctx, `INSERT INTO effects (event_id, aggregate_id, amount) VALUES ($1, $2, $3)`, env.ID, env.AggregateID, e.Amount)
	}); err != nil {
		b.Fatal(err)
	}
	store, err := postgres.NewProjectionStore(pg.pool, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := k.router(b, nil)
	if err := p.Subscribe(r, pg.inbox, store); err != nil {
		b.Fatal(err)
	}
	stop = runBench(b, r)
	return func() {
		// The last handler has run; its batch commits a moment later.
		testinfra.Eventually(b, time.Minute, func() bool { return pg.count(b, `SELECT count(*) FROM effects`) >= b.N },
			"read model has all %d rows", b.N)
		stop()
	}
}
