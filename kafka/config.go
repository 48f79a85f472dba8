package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/IBM/sarama"

	"github.com/dddkit/dddkit/internal/check"
)

// DefaultVersion is the Kafka protocol version a [Client] speaks unless
// [Config.Version] says otherwise. Kafka 4 brokers refuse the much older
// protocol sarama defaults to.
var DefaultVersion = sarama.V3_6_0_0

// DefaultClientID is the client ID sent to the brokers unless
// [Config.ClientID] says otherwise.
const DefaultClientID = "dddkit"

// Config configures a [Client]: the one configuration of the producer and
// of every consumer the client makes. Only Brokers is required; the zero
// value of every other field means its default.
type Config struct {
	// Brokers are the bootstrap brokers, host:port. Required.
	Brokers []string

	// ClientID is sent to the brokers for their logs and quotas. ""
	// means [DefaultClientID].
	ClientID string

	// Version is the protocol version to speak; the zero value means
	// [DefaultVersion]. It must be at least 0.11 (idempotent producer);
	// Kafka 4 brokers need 2.1 or newer.
	Version sarama.KafkaVersion

	// InitialOffset is where a consumer group with no committed offset
	// starts: sarama.OffsetOldest (the default; a new handler sees every
	// event still on the topic) or sarama.OffsetNewest (only events
	// published from now on). 0 means OffsetOldest.
	InitialOffset int64

	// CommitInterval is how often consumed offsets are committed. 0 means
	// one second. Offsets are also committed when a consumer stops;
	// after a crash up to one interval of events is delivered again,
	// which the inbox makes harmless.
	CommitInterval time.Duration

	// NackResendSleep is how long a subscriber waits before it delivers
	// a message again after a handler failed it for good without a dead
	// letter (the dead-letter publish failed). 0 means one second.
	NackResendSleep time.Duration

	// Topics are the defaults of the topics [Client.Provision] creates:
	// partitions, replication factor and topic configuration. The zero
	// value means [DefaultPartitions] partitions, the brokers' default
	// replication factor and the brokers' default configuration.
	Topics TopicDefaults

	// Configure, if set, gets the last word on the sarama configuration
	// built from the fields above, for the producer and the consumers
	// alike: TLS, SASL, compression, timeouts.
	//
	// Two defaults of dddkit differ from sarama's, and Configure may
	// change them back. Keys are partitioned as Java's producer does
	// (Producer.Partitioner = sarama.NewMurmur2Partitioner: partition =
	// (murmur2(key) & 0x7fffffff) % partitions), so that a Java, Kafka
	// Streams or Kafka Connect producer writing the same keys puts them on
	// the same partitions, and per-key order and co-partitioned joins
	// hold across languages. Another partitioner is an opt-out to choose
	// before the first production topic is written: changing it later
	// moves existing keys to other partitions, so a key's new events
	// overtake its old ones on another partition. And metadata requests
	// never create topics (Metadata.AllowAutoTopicCreation = false), even
	// where the brokers allow it: topics are made by [Client.Provision],
	// with their partitions, not by the first client that names one.
	// The producer keeps sarama's default of no linger
	// (Producer.Flush.Frequency 0): see the package documentation before
	// setting one.
	//
	// What the delivery guarantees rest on is checked again afterwards:
	// a Configure that turns off acks from all in-sync replicas
	// (Producer.RequiredAcks = WaitForAll), the idempotent producer
	// (Producer.Idempotent, which also needs Net.MaxOpenRequests = 1) or
	// the producer's acknowledgements (Producer.Return.Successes and
	// .Errors) makes [NewClient] fail.
	Configure func(c *sarama.Config)

	// Logger receives the log lines of the subscribers (watermill-kafka's
	// included); nil means slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c at once. A nil Config has no
// brokers.
func (c *Config) Validate() error {
	if c == nil {
		return errors.New("kafka: Config.Brokers is empty")
	}
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka: Config.Brokers is empty"))
	} else if slices.Contains(c.Brokers, "") {
		errs = append(errs, fmt.Errorf("kafka: Config.Brokers %q has an empty entry", c.Brokers))
	}
	if c.Version != (sarama.KafkaVersion{}) && !c.Version.IsAtLeast(sarama.V0_11_0_0) {
		errs = append(errs, fmt.Errorf("kafka: Config.Version %s is older than 0.11, which the idempotent producer needs", c.Version))
	}
	switch c.InitialOffset {
	case 0, sarama.OffsetOldest, sarama.OffsetNewest:
	default:
		errs = append(errs, fmt.Errorf("kafka: Config.InitialOffset is %d, want sarama.OffsetOldest or sarama.OffsetNewest", c.InitialOffset))
	}
	e := check.New("kafka: Config")
	for _, err := range errs {
		e.Add(err)
	}
	check.NotNegative(e, "CommitInterval", c.CommitInterval)
	check.NotNegative(e, "NackResendSleep", c.NackResendSleep)
	for _, err := range c.Topics.validate("kafka: Config.Topics") {
		e.Add(err)
	}
	return e.Err()
}

// withDefaults validates c and returns a copy with the defaults filled in.
func (c *Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	out := *c
	out.Brokers = slices.Clone(c.Brokers)
	if out.ClientID == "" {
		out.ClientID = DefaultClientID
	}
	if out.Version == (sarama.KafkaVersion{}) {
		out.Version = DefaultVersion
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
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	out.Topics = out.Topics.withDefaults()
	return out, nil
}

// saramaConfig builds a new sarama configuration for the producer and the
// consumers from c, which has its defaults filled in.
func (c *Config) saramaConfig() (*sarama.Config, error) {
	s := sarama.NewConfig()
	s.ClientID = c.ClientID
	s.Version = c.Version

	// Producer: nothing is acknowledged before every in-sync replica has
	// it, and retries cannot duplicate or reorder (idempotent producer,
	// one request in flight per broker). The retries ride out a broker
	// restart or a leader election.
	s.Producer.RequiredAcks = sarama.WaitForAll
	s.Producer.Idempotent = true
	s.Net.MaxOpenRequests = 1
	s.Producer.Retry.Max = 10
	s.Producer.Retry.Backoff = 250 * time.Millisecond
	s.Metadata.Retry.Backoff = 250 * time.Millisecond
	s.Producer.Return.Successes = true
	s.Producer.Return.Errors = true
	// No linger (Producer.Flush.Frequency, Java's linger.ms): a produce
	// request leaves as soon as the one before it is answered, with every
	// message that came meanwhile. A linger would be paid once per event
	// of an aggregate, as the relay publishes an aggregate's events one
	// acknowledged call after another (BENCHMARKS.md, nineteenth pass).
	// Keys land where Java's default partitioner puts them.
	s.Producer.Partitioner = sarama.NewMurmur2Partitioner
	// Topics are provisioned, never created by a metadata request.
	s.Metadata.AllowAutoTopicCreation = false

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
	if !s.Producer.Return.Successes || !s.Producer.Return.Errors {
		errs = append(errs, errors.New("Producer.Return.Successes and Producer.Return.Errors must stay true"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("kafka: Config.Configure: %w", err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("kafka: sarama configuration: %w", err)
	}
	return s, nil
}
