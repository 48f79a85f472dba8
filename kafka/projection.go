package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/projection"
)

// ProjectionConsumer runs a [projection.Projection] on Kafka: one
// [BatchConsumer] per topic of the projection's event types (the
// projection's name is the consumer group; with several topics each has
// the group "<name>@<topic>"). Each batch of a partition — up to
// [eventbus.BatchConfig] MaxBatch events — is applied in one
// [eventbus.Inbox.ProcessBatch]: with the PostgreSQL inbox one
// transaction that holds the read model's writes and the inbox rows, so
// an event redelivered after a crash or a rebalance is not applied
// twice. The events of one aggregate (one key, one partition) are
// applied in order.
//
// An event that keeps failing goes to the dead-letter topic after the
// retries of [eventbus.BatchConfig] Retry, as on any consumer of the
// bus; see [projection.Projection.Subscribe]. Rebuilds read the event
// store's stream ([projection.Runner.Rebuild]), not the topics, which
// may be compacted or expired; the consumer groups' offsets are not
// reset.
type ProjectionConsumer struct {
	consumers []*BatchConsumer
}

// NewProjectionConsumer returns the Kafka consumers of p, with inbox
// making each event's effects happen once, each batch's handlers in a
// Do of store that joins the inbox's transaction (with
// postgres.ProjectionStore, statements queued with postgres.QueueExec
// go in one round trip), and c's producer publishing dead letters. A nil cfg means the defaults of [eventbus.BatchConfig];
// its Topic must be empty.
func NewProjectionConsumer(c *Client, p *projection.Projection, inbox eventbus.Inbox, store projection.Store, cfg *eventbus.BatchConfig) (*ProjectionConsumer, error) {
	if c == nil || p == nil {
		return nil, errors.New("kafka: NewProjectionConsumer: nil Client or Projection")
	}
	procs, err := p.BatchProcessors(inbox, store, c.Publisher(), cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka: projection consumer: %w", err)
	}
	pc := &ProjectionConsumer{}
	for _, proc := range procs {
		pc.consumers = append(pc.consumers, &BatchConsumer{client: c, proc: proc, cfg: proc.Config(), unmarshaler: newMarshaler()})
	}
	return pc, nil
}

// Topics returns the topics the consumer reads.
func (pc *ProjectionConsumer) Topics() []string {
	out := make([]string, len(pc.consumers))
	for i, c := range pc.consumers {
		out[i] = c.Topic()
	}
	return out
}

// Run consumes until ctx ends, as [BatchConsumer.Run] does for each
// topic, and returns when every consumer has committed its offsets and
// left its group. A consumer runs once.
func (pc *ProjectionConsumer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(pc.consumers))
	for i, c := range pc.consumers {
		wg.Go(func() { errs[i] = c.Run(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
