package kafka

import (
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/internal/wire"
)

// partitionKey returns the Kafka message key of msg: its aggregate ID
// (the wire.HeaderAggregateID header), or the message UUID when the
// header is absent. All events of one aggregate thus land on one
// partition and keep their order.
func partitionKey(_ string, msg *message.Message) (string, error) {
	if id := msg.Metadata.Get(wire.HeaderAggregateID); id != "" {
		return id, nil
	}
	return msg.UUID, nil
}

// newMarshaler returns the wire marshaler of every message dddkit sends
// or receives through Kafka: watermill-kafka's, with the watermill
// metadata as record headers, the message UUID in watermill's
// "_watermill_message_uuid" header and [partitionKey] as the key.
func newMarshaler() wmkafka.MarshalerUnmarshaler {
	return wmkafka.NewWithPartitioningMarshaler(partitionKey)
}
