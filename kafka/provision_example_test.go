package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
)

// At start-up, every replica provisions the topics the service writes
// and reads: those of its registry and of its router (which adds the
// dead-letter topics). Topics that exist are checked, not changed.
func ExampleClient_Provision() {
	if err := provisionAccounts(); err != nil {
		log.Fatal(err)
	}
}

func provisionAccounts() error {
	client, err := kafka.NewClient(&kafka.Config{
		Brokers: []string{"kafka-1:9092", "kafka-2:9092", "kafka-3:9092"},
		Topics: kafka.TopicDefaults{
			Partitions:        12,
			ReplicationFactor: 3,
			Config:            map[string]string{"min.insync.replicas": "2", "retention.ms": "604800000"},
		},
	})
	if err != nil {
		return err
	}
	defer client.Close()

	reg := eventbus.NewRegistry(nil)
	if err := eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user")); err != nil {
		return err
	}
	router, err := eventbus.NewRouter(client, reg, nil)
	if err != nil {
		return err
	}
	// ... register the handlers on router ...

	var topics []kafka.TopicSpec
	for _, name := range append(reg.Topics(), router.Topics()...) {
		topics = append(topics, kafka.TopicSpec{Name: name})
	}
	// A topic of its own settings: compacted, one partition.
	topics = append(topics, kafka.TopicSpec{Name: "user.snapshots", Partitions: 1, Config: map[string]string{"cleanup.policy": "compact"}})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = client.Provision(ctx, topics...)
	if mismatch := (*kafka.TopicMismatchError)(nil); errors.As(err, &mismatch) {
		return fmt.Errorf("topic %s has %d partitions, the service is configured for %d: %w", mismatch.Topic, mismatch.Got, mismatch.Want, err)
	}
	return err
}
