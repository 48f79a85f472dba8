package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/IBM/sarama"
)

// DefaultPartitions is the partition count of the topics [Client.Provision]
// creates unless [TopicSpec.Partitions] or [TopicDefaults.Partitions] says
// otherwise. The partitions of a topic bound how many members of one
// consumer group share its load; they can be added later, but that moves
// keys to other partitions (see [Config.Configure]), so a topic starts
// with room to grow.
const DefaultPartitions int32 = 6

// BrokerDefaultReplication as a replication factor leaves it to the
// brokers: their default.replication.factor (1 on a single test broker,
// typically 3 on a production cluster).
const BrokerDefaultReplication int16 = -1

// provisionWait bounds how long Provision waits for a topic's metadata
// when its context has no deadline.
const provisionWait = time.Minute

// ErrTopicMismatch is matched (errors.Is) by a [*TopicMismatchError].
var ErrTopicMismatch = errors.New("kafka: topic exists with another partition count")

// TopicMismatchError reports a topic that exists with another partition
// count than the one [Client.Provision] was asked for. Provision does not
// change the topic: adding partitions moves keys, which is the operator's
// decision; ask for the partition count the topic has, or change the
// topic first.
type TopicMismatchError struct {
	Topic string
	Want  int32 // the partitions asked for
	Got   int32 // the partitions the topic has
}

func (e *TopicMismatchError) Error() string {
	return fmt.Sprintf("kafka: topic %q has %d partitions, want %d", e.Topic, e.Got, e.Want)
}

// Is reports whether target is [ErrTopicMismatch].
func (e *TopicMismatchError) Is(target error) bool { return target == ErrTopicMismatch }

// TopicDefaults are the settings of the topics a [Client] provisions
// where a [TopicSpec] leaves them out ([Config.Topics]).
type TopicDefaults struct {
	// Partitions is the partition count of a new topic. 0 means
	// [DefaultPartitions].
	Partitions int32

	// ReplicationFactor is the number of copies of each partition. 0 and
	// [BrokerDefaultReplication] (-1) leave it to the brokers'
	// default.replication.factor: 1 on a one-broker development cluster,
	// what the operators chose on a production one. With
	// min.insync.replicas, it decides how many broker failures the
	// producer's acks=all survives.
	ReplicationFactor int16

	// Config is the topic configuration of a new topic
	// (retention.ms, min.insync.replicas, cleanup.policy, ...). Keys not
	// set keep the brokers' defaults.
	Config map[string]string
}

func (d TopicDefaults) withDefaults() TopicDefaults {
	if d.Partitions == 0 {
		d.Partitions = DefaultPartitions
	}
	if d.ReplicationFactor == 0 {
		d.ReplicationFactor = BrokerDefaultReplication
	}
	d.Config = maps.Clone(d.Config)
	return d
}

// validate returns the problems of d, each prefixed with prefix.
func (d TopicDefaults) validate(prefix string) []error {
	var errs []error
	if d.Partitions < 0 {
		errs = append(errs, fmt.Errorf("%s.Partitions is %d, must be >= 0", prefix, d.Partitions))
	}
	if d.ReplicationFactor < BrokerDefaultReplication {
		errs = append(errs, fmt.Errorf("%s.ReplicationFactor is %d, must be >= -1", prefix, d.ReplicationFactor))
	}
	for _, k := range slices.Sorted(maps.Keys(d.Config)) {
		if k == "" {
			errs = append(errs, fmt.Errorf("%s.Config has an empty key", prefix))
		}
	}
	return errs
}

// TopicSpec describes one topic for [Client.Provision]. Only Name is
// required; zero fields take [Config.Topics].
type TopicSpec struct {
	// Name is the topic: at most 249 ASCII letters, digits, '.', '_' and
	// '-', not "." or "..".
	Name string

	// Partitions is the partition count; 0 means
	// [TopicDefaults.Partitions].
	Partitions int32

	// ReplicationFactor is the number of copies of each partition; 0
	// means [TopicDefaults.ReplicationFactor], -1 the brokers' default.
	ReplicationFactor int16

	// Config is the topic configuration; its entries are added to
	// [TopicDefaults.Config], replacing those of the same key.
	Config map[string]string
}

// Provision makes sure that every topic of topics exists, with the
// partition count asked for, and that its metadata is visible to the
// brokers' clients, so that what runs next can produce to it and
// consume from it.
//
// A topic that does not exist is created with its partitions,
// replication factor and configuration. A topic that exists is left as it
// is and its partition count is checked: a different count is a
// [*TopicMismatchError] (errors.Is(err, [ErrTopicMismatch])); its
// replication factor and configuration are not compared. Provision is
// idempotent and safe to run from every replica of a service at start-up
// at once: a topic another replica created in the meantime (Kafka's
// TOPIC_ALREADY_EXISTS) is checked like any existing topic.
//
// Provision returns when every topic has a leader for each of its
// partitions, when ctx ends or, for a ctx without deadline, after a
// minute. Problems of several topics are joined. Naming a topic twice
// is fine when both specs agree.
//
// Provisioning needs the brokers to allow the client to describe topics
// and, for the topics that do not exist yet, to create them (the ACL
// operations DESCRIBE and CREATE); a service without CREATE can still
// verify topics its operators created.
func (c *Client) Provision(ctx context.Context, topics ...TopicSpec) error {
	specs, err := c.resolveTopics(topics)
	if err != nil || len(specs) == 0 {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, provisionWait)
		defer cancel()
	}
	sc, err := c.cfg.saramaConfig()
	if err != nil {
		return err
	}
	client, err := sarama.NewClient(c.cfg.Brokers, sc)
	if err != nil {
		return fmt.Errorf("kafka: provision: connect: %w", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return fmt.Errorf("kafka: provision: %w", err)
	}
	defer admin.Close() // closes client too

	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	existing, err := describe(admin, names)
	if err != nil {
		return fmt.Errorf("kafka: provision: describe topics: %w", err)
	}
	var errs []error
	for _, s := range specs {
		if !existing[s.Name] {
			if err := create(admin, s); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if err := waitForTopic(ctx, client, s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// resolveTopics validates topics, fills in the defaults and merges
// repeated names, in the order of their first mention.
func (c *Client) resolveTopics(topics []TopicSpec) ([]TopicSpec, error) {
	d := c.cfg.Topics
	var out []TopicSpec
	seen := map[string]int{}
	var errs []error
	for i, t := range topics {
		if err := validTopicName(t.Name); err != nil {
			errs = append(errs, fmt.Errorf("kafka: Provision: topics[%d]: %w", i, err))
			continue
		}
		prefix := fmt.Sprintf("kafka: Provision: topic %q", t.Name)
		bad := TopicDefaults{Partitions: t.Partitions, ReplicationFactor: t.ReplicationFactor, Config: t.Config}.validate(prefix)
		if len(bad) > 0 {
			errs = append(errs, bad...)
			continue
		}
		r := TopicSpec{Name: t.Name, Partitions: t.Partitions, ReplicationFactor: t.ReplicationFactor, Config: maps.Clone(d.Config)}
		if r.Partitions == 0 {
			r.Partitions = d.Partitions
		}
		if r.ReplicationFactor == 0 {
			r.ReplicationFactor = d.ReplicationFactor
		}
		if len(t.Config) > 0 && r.Config == nil {
			r.Config = map[string]string{}
		}
		maps.Copy(r.Config, t.Config)
		if j, ok := seen[r.Name]; ok {
			if p := out[j]; p.Partitions != r.Partitions || p.ReplicationFactor != r.ReplicationFactor || !maps.Equal(p.Config, r.Config) {
				errs = append(errs, fmt.Errorf("kafka: Provision: topic %q is named twice with different settings", r.Name))
			}
			continue
		}
		seen[r.Name] = len(out)
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// validTopicName reports whether Kafka accepts name as a topic name.
func validTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("empty topic name")
	case name == "." || name == "..":
		return fmt.Errorf("topic name %q is not allowed", name)
	case len(name) > 249:
		return fmt.Errorf("topic name %q is longer than 249 characters", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !topicChar(c) {
			return fmt.Errorf("topic name %q has %q: only ASCII letters, digits, '.', '_' and '-' are allowed", name, c)
		}
	}
	return nil
}

func topicChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

// describe reports which of names exist.
func describe(admin sarama.ClusterAdmin, names []string) (map[string]bool, error) {
	meta, err := admin.DescribeTopics(names)
	if err != nil {
		return nil, err
	}
	exists := make(map[string]bool, len(meta))
	for _, m := range meta {
		switch {
		case errors.Is(m.Err, sarama.ErrUnknownTopicOrPartition):
		case errors.Is(m.Err, sarama.ErrNoError), errors.Is(m.Err, sarama.ErrLeaderNotAvailable):
			exists[m.Name] = true // a leader being elected is waited for
		default:
			return nil, fmt.Errorf("topic %q: %w", m.Name, m.Err)
		}
	}
	return exists, nil
}

// create creates the topic of s; a topic that exists by now (another
// replica was quicker) is no error: waitForTopic checks it.
func create(admin sarama.ClusterAdmin, s TopicSpec) error {
	detail := &sarama.TopicDetail{NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
	if len(s.Config) > 0 {
		detail.ConfigEntries = make(map[string]*string, len(s.Config))
		for k, v := range s.Config {
			detail.ConfigEntries[k] = &v
		}
	}
	err := admin.CreateTopic(s.Name, detail, false)
	if err == nil || errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return nil
	}
	return fmt.Errorf("kafka: provision: create topic %q (%d partitions, replication factor %d): %w",
		s.Name, s.Partitions, s.ReplicationFactor, err)
}

// waitForTopic waits until the metadata of s's topic lists a leader for
// every partition and checks the partition count.
func waitForTopic(ctx context.Context, client sarama.Client, s TopicSpec) error {
	var last error
	for {
		if last = client.RefreshMetadata(s.Name); last == nil {
			parts, err := client.Partitions(s.Name)
			switch {
			case err != nil:
				last = err
			case len(parts) != int(s.Partitions):
				return &TopicMismatchError{Topic: s.Name, Want: s.Partitions, Got: int32(len(parts))} //nolint:gosec // a partition count fits int32
			default:
				last = nil
				for _, p := range parts {
					if _, err := client.Leader(s.Name, p); err != nil {
						last = fmt.Errorf("partition %d: %w", p, err)
						break
					}
				}
				if last == nil {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka: provision: topic %q not ready: %w (last: %w)", s.Name, ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
