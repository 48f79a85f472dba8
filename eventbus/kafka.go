package eventbus

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/internal/wire"
)

// KafkaVersion is the Kafka protocol version dddkit speaks unless
// [KafkaConfig.Version] says otherwise. Kafka 4 brokers refuse the much
// older protocol sarama defaults to.
var KafkaVersion = sarama.V3_6_0_0

// KafkaConfig configures the Kafka publisher and subscribers
// ([NewKafkaPublisher], [NewKafkaSubscriber], [NewKafkaTransport]). The
// zero value and nil are the defaults.
type KafkaConfig struct {
	// ClientID is sent to the brokers for their logs and quotas. ""
	// means "dddkit".
	ClientID string

	// Version is the protocol version to speak; the zero value means
	// [KafkaVersion]. It must be at least 0.11 (idempotent producer);
	// Kafka 4 brokers need 2.1 or newer.
	Version sarama.KafkaVersion

	// InitialOffset is where a consumer group with no committed offset
	// starts: sarama.OffsetOldest (the default; a new handler sees every
	// event still on the topic) or sarama.OffsetNewest (only events
	// published from now on). 0 means OffsetOldest.
	InitialOffset int64

	// CommitInterval is how often consumed offsets are committed. 0 means
	// one second. Offsets are also committed when a subscriber closes;
	// after a crash up to one interval of events is delivered again, which
	// the inbox makes harmless.
	CommitInterval time.Duration

	// NackResendSleep is how long a subscriber waits before it delivers
	// a message again after a handler failed it for good without a dead
	// letter (the dead-letter publish failed). 0 means one second.
	NackResendSleep time.Duration

	// Configure, if set, gets the last word on every sarama configuration
	// built from the fields above: for TLS, SASL, timeouts. The producer
	// guarantees (acks=all, idempotence, one request in flight) are
	// checked again afterwards; a Configure that turns them off is an
	// error.
	Configure func(c *sarama.Config)

	// Logger receives the log lines of the watermill-kafka publisher and
	// subscribers; nil means slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c *KafkaConfig) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	if c.Version != (sarama.KafkaVersion{}) && !c.Version.IsAtLeast(sarama.V0_11_0_0) {
		errs = append(errs, fmt.Errorf("eventbus: KafkaConfig.Version %s is older than 0.11, which the idempotent producer needs", c.Version))
	}
	switch c.InitialOffset {
	case 0, sarama.OffsetOldest, sarama.OffsetNewest:
	default:
		errs = append(errs, fmt.Errorf("eventbus: KafkaConfig.InitialOffset is %d, want sarama.OffsetOldest or sarama.OffsetNewest", c.InitialOffset))
	}
	if c.CommitInterval < 0 {
		errs = append(errs, fmt.Errorf("eventbus: KafkaConfig.CommitInterval is %s, must be >= 0", c.CommitInterval))
	}
	if c.NackResendSleep < 0 {
		errs = append(errs, fmt.Errorf("eventbus: KafkaConfig.NackResendSleep is %s, must be >= 0", c.NackResendSleep))
	}
	return errors.Join(errs...)
}

func (c *KafkaConfig) withDefaults() (KafkaConfig, error) {
	if err := c.Validate(); err != nil {
		return KafkaConfig{}, err
	}
	out := KafkaConfig{}
	if c != nil {
		out = *c
	}
	if out.ClientID == "" {
		out.ClientID = "dddkit"
	}
	if out.Version == (sarama.KafkaVersion{}) {
		out.Version = KafkaVersion
	}
	if out.InitialOffset == 0 {
		out.InitialOffset = sarama.OffsetOldest
	}
	if out.CommitInterval == 0 {
		out.CommitInterval = time.Second
	}
	if out.NackResendSleep == 0 {
		out.NackResendSleep = time.Second
	}
	return out, nil
}

func checkBrokers(brokers []string) error {
	if len(brokers) == 0 || slices.Contains(brokers, "") {
		return fmt.Errorf("eventbus: kafka: brokers %q: need at least one, none empty", brokers)
	}
	return nil
}

// saramaConfig builds the sarama configuration shared by producers and
// consumers.
func (c *KafkaConfig) saramaConfig() (*sarama.Config, error) {
	s := sarama.NewConfig()
	s.ClientID = c.ClientID
	s.Version = c.Version

	// Producer: nothing is acknowledged before every in-sync replica has
	// it, and retries cannot duplicate or reorder (idempotent producer,
	// one request in flight per broker).
	s.Producer.RequiredAcks = sarama.WaitForAll
	s.Producer.Idempotent = true
	s.Net.MaxOpenRequests = 1
	s.Producer.Retry.Max = 10
	s.Producer.Return.Successes = true
	s.Producer.Return.Errors = true

	s.Consumer.Return.Errors = true
	s.Consumer.Offsets.Initial = c.InitialOffset
	s.Consumer.Offsets.AutoCommit.Enable = true
	s.Consumer.Offsets.AutoCommit.Interval = c.CommitInterval

	if c.Configure != nil {
		c.Configure(s)
	}
	var errs []error
	if s.Producer.RequiredAcks != sarama.WaitForAll {
		errs = append(errs, errors.New("Producer.RequiredAcks must stay WaitForAll"))
	}
	if !s.Producer.Idempotent {
		errs = append(errs, errors.New("Producer.Idempotent must stay true"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("eventbus: KafkaConfig.Configure: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("eventbus: kafka configuration: %w", err)
	}
	return s, nil
}

// NewKafkaPublisher returns a watermill-kafka publisher for domain events:
// acks=all, idempotent producer with one request in flight (no duplicates
// or reordering from retries), and the aggregate ID ([HeaderAggregateID])
// as message key, so that the events of one aggregate share a partition
// and keep their order. It connects to the brokers before it returns.
//
// Give it to a [Publisher] or to the outbox relay. A nil cfg means the
// defaults.
func NewKafkaPublisher(brokers []string, cfg *KafkaConfig) (*kafka.Publisher, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkBrokers(brokers); err != nil {
		return nil, err
	}
	s, err := c.saramaConfig()
	if err != nil {
		return nil, err
	}
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:               slices.Clone(brokers),
		Marshaler:             wire.KafkaMarshaler(),
		OverwriteSaramaConfig: s,
	}, watermill.NewSlogLogger(c.Logger))
	if err != nil {
		return nil, fmt.Errorf("eventbus: kafka publisher: %w", err)
	}
	return pub, nil
}

// NewKafkaSubscriber returns a watermill-kafka subscriber that consumes as
// consumer group group. Offsets are committed only for messages a handler
// has acknowledged. A nil cfg means the defaults.
func NewKafkaSubscriber(brokers []string, group string, cfg *KafkaConfig) (*kafka.Subscriber, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkBrokers(brokers); err != nil {
		return nil, err
	}
	if group == "" {
		return nil, errors.New("eventbus: kafka subscriber: empty consumer group")
	}
	s, err := c.saramaConfig()
	if err != nil {
		return nil, err
	}
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               slices.Clone(brokers),
		Unmarshaler:           wire.KafkaMarshaler(),
		OverwriteSaramaConfig: s,
		ConsumerGroup:         group,
		NackResendSleep:       c.NackResendSleep,
		ReconnectRetrySleep:   time.Second,
	}, watermill.NewSlogLogger(c.Logger))
	if err != nil {
		return nil, fmt.Errorf("eventbus: kafka subscriber %q: %w", group, err)
	}
	return sub, nil
}

// KafkaTransport is the Kafka [Transport]: one consumer group per handler
// name, and a publisher built by [NewKafkaPublisher] for dead letters and
// for a [Publisher].
type KafkaTransport struct {
	brokers []string
	cfg     KafkaConfig
	pub     *kafka.Publisher
}

// NewKafkaTransport connects to brokers and returns the transport. A nil
// cfg means the defaults.
func NewKafkaTransport(brokers []string, cfg *KafkaConfig) (*KafkaTransport, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	pub, err := NewKafkaPublisher(brokers, &c)
	if err != nil {
		return nil, err
	}
	return &KafkaTransport{brokers: slices.Clone(brokers), cfg: c, pub: pub}, nil
}

// Publisher returns the transport's publisher. The transport owns it: a
// Router's or Publisher's Close leaves it open, [KafkaTransport.Close]
// closes it.
func (t *KafkaTransport) Publisher() message.Publisher { return sharedPublisher{t.pub} }

// Subscriber returns a new subscriber for consumer group group.
func (t *KafkaTransport) Subscriber(group string) (message.Subscriber, error) {
	return NewKafkaSubscriber(t.brokers, group, &t.cfg)
}

// Close closes the publisher.
func (t *KafkaTransport) Close() error {
	if err := t.pub.Close(); err != nil {
		return fmt.Errorf("eventbus: close kafka transport: %w", err)
	}
	return nil
}

// sharedPublisher hides Close of a publisher owned by someone else.
type sharedPublisher struct{ message.Publisher }

func (sharedPublisher) Close() error { return nil }
