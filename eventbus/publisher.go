package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// Publisher publishes events straight to a watermill publisher, without
// the outbox: for in-process wiring, tests, and events where losing one on
// a crash is acceptable. Events recorded by aggregates and saved by a
// repository go through the outbox instead, which publishes them if and
// only if the save committed.
type Publisher struct {
	pub message.Publisher
	reg *Registry
}

// NewPublisher returns a publisher that encodes with reg and publishes
// through pub (the Publisher of a kafka.Client, [MemoryTransport.Publisher],
// ...). reg needs a source, the CloudEvents source of the events it
// publishes ([RegistryConfig.Source]).
func NewPublisher(pub message.Publisher, reg *Registry) (*Publisher, error) {
	var errs []error
	if pub == nil {
		errs = append(errs, errors.New("eventbus: NewPublisher: nil message.Publisher"))
	}
	if reg == nil {
		errs = append(errs, errors.New("eventbus: NewPublisher: nil Registry"))
	} else if err := reg.CheckSource(); err != nil {
		errs = append(errs, fmt.Errorf("eventbus: NewPublisher: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Publisher{pub: pub, reg: reg}, nil
}

// Publish encodes each envelope ([Registry.Encode]; its payload must be of
// a registered type) and publishes it on the topic of its aggregate type,
// in the order given. Metadata missing
// from an envelope is filled from ctx ([aggregate.MetadataFromContext],
// with the trace context of ctx's span when tracing is on);
// an envelope without an occurred-at time gets the current time, as the
// outbox gives one (it is the event's ce_time and the Kafka record
// timestamp).
// It stops at the first failure; the envelopes before it were published.
func (p *Publisher) Publish(ctx context.Context, envs ...aggregate.Envelope) error {
	ctxMD := telemetry.Metadata(ctx)
	var now time.Time
	for _, env := range envs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("eventbus: publish: %w", err)
		}
		env.Metadata = env.Metadata.Merge(ctxMD)
		if env.OccurredAt.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			env.OccurredAt = now
		}
		msg, err := p.reg.Encode(env)
		if err != nil {
			return err
		}
		msg.SetContext(ctx)
		topic := p.reg.Topic(env.AggregateType)
		if err := p.pub.Publish(topic, msg); err != nil {
			return fmt.Errorf("eventbus: publish %s %s to %q: %w", env.Name, env.ID, topic, err)
		}
	}
	return nil
}
