package kafkapub_test

import (
	"log"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/outbox/kafkapub"
)

// A batch of messages goes out in one Publish call; it returns when Kafka
// has acknowledged all of them.
func ExampleNewPublisher() {
	if err := publishTwo(); err != nil {
		log.Fatal(err)
	}
}

func publishTwo() error {
	base := sarama.NewConfig()
	base.Producer.Compression = sarama.CompressionLZ4 // anything not about safety may be tuned
	pub, err := kafkapub.NewPublisher(&kafkapub.Config{
		Brokers: []string{"localhost:9092"},
		Version: sarama.V3_6_0_0,
		Sarama:  base,
	})
	if err != nil {
		return err
	}
	defer pub.Close()

	a := message.NewMessage("e1", []byte(`{"n":1}`))
	a.Metadata.Set("aggregate_id", "order-7") // the Kafka key: one aggregate, one partition
	b := message.NewMessage("e2", []byte(`{"n":2}`))
	b.Metadata.Set("aggregate_id", "order-7")
	return pub.Publish("order.events", a, b)
}
