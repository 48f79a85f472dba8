package kafka

import (
	"context"
	"strconv"

	"github.com/IBM/sarama"
	"go.opentelemetry.io/otel/metric"

	"github.com/dddkit/dddkit/internal/telemetry"
)

// consumerLag is the gauge dddkit.consumer.lag: how many messages of a
// partition a [BatchConsumer] has not handled yet, the batch it is
// handling included, when it took that batch. It comes from the high
// watermark that the fetch responses carry (sarama's
// ConsumerGroupClaim.HighWaterMarkOffset): measuring it asks the broker
// nothing.
var consumerLag = telemetry.Must(telemetry.Meter().Int64Gauge("dddkit.consumer.lag",
	metric.WithUnit("{message}"),
	metric.WithDescription("Messages of a partition that a batching Kafka consumer has not handled yet (high watermark minus the offset of the batch it takes), by consumer group, topic and partition.")))

// recordLag records the lag of group on claim's partition as it takes
// batch.
func recordLag(ctx context.Context, group string, claim sarama.ConsumerGroupClaim, batch []*sarama.ConsumerMessage) {
	if len(batch) == 0 || !consumerLag.Enabled(ctx) {
		return
	}
	consumerLag.Record(ctx, max(claim.HighWaterMarkOffset()-batch[0].Offset, 0), telemetry.Attrs(
		telemetry.AttrMessagingConsumerGroup.String(group),
		telemetry.AttrMessagingDestination.String(claim.Topic()),
		telemetry.AttrMessagingPartition.String(strconv.Itoa(int(claim.Partition())))))
}
