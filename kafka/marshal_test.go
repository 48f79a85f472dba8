package kafka

import (
	"testing"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
)

func TestMarshalerKeysByAggregate(t *testing.T) {
	t.Parallel()
	msg := wire.ToMessage(aggregate.Envelope{ID: "e1", Name: "n", AggregateType: "user", AggregateID: "u-9", Version: 1}, []byte(`{}`))
	pm, err := newMarshaler().Marshal("user.events", msg)
	require.NoError(t, err)
	key, err := pm.Key.Encode()
	require.NoError(t, err)
	require.Equal(t, "u-9", string(key))
	headers := map[string]string{}
	for _, h := range pm.Headers {
		headers[string(h.Key)] = string(h.Value)
	}
	require.Equal(t, "e1", headers["_watermill_message_uuid"])
	require.Equal(t, "u-9", headers[wire.HeaderAggregateID])

	back, err := newMarshaler().Unmarshal(&sarama.ConsumerMessage{Value: []byte(`{}`), Headers: toPtrs(pm.Headers)})
	require.NoError(t, err)
	require.Equal(t, "e1", back.UUID)
	require.Equal(t, msg.Metadata, back.Metadata)

	noAgg := message.NewMessage("m-1", nil)
	k, err := partitionKey("t", noAgg)
	require.NoError(t, err)
	require.Equal(t, "m-1", k)
}

func toPtrs(hs []sarama.RecordHeader) []*sarama.RecordHeader {
	out := make([]*sarama.RecordHeader, len(hs))
	for i := range hs {
		out[i] = &hs[i]
	}
	return out
}
