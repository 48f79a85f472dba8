package kafkatest_test

import (
	"testing"

	"github.com/IBM/sarama"

	"github.com/dddkit/dddkit/dddkittest/kafkatest"
)

// A test gets a topic of its own (skipped without TEST_KAFKA_BROKERS),
// writes to it and reads it back.
func Example() {
	_ = func(t *testing.T) {
		topic := kafkatest.Topic(t, 3) // deleted when the test ends
		cfg := kafkatest.Config(t)
		cfg.Producer.Return.Successes = true
		producer, err := sarama.NewSyncProducer(kafkatest.Brokers(t), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer producer.Close()
		if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder("v")}); err != nil {
			t.Fatal(err)
		}
		records := kafkatest.ReadAll(t, kafkatest.Brokers(t), topic)
		if len(records) != 1 || records[0].Key != "k" {
			t.Fatalf("read back %v", records)
		}
	}
}
