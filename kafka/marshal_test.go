package kafka

import (
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
)

func TestMarshalerMapsTheWireContract(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC)
	payload := []byte(`{"zeta":1, "alpha":2}`)
	msg := wire.ToMessage(aggregate.Envelope{ID: "e1", Name: "n", AggregateType: "user", AggregateID: "u-9", Version: 1,
		OccurredAt: at, Metadata: aggregate.Metadata{CorrelationID: "c", Values: map[string]string{"b": "2", "a": "1"}}}, "urn:test", payload, 1)
	pm, err := newMarshaler().Marshal("user.events", msg)
	require.NoError(t, err)
	require.Equal(t, "user.events", pm.Topic)
	key, err := pm.Key.Encode()
	require.NoError(t, err)
	require.Equal(t, "u-9", string(key), "key = aggregate ID")
	value, err := pm.Value.Encode()
	require.NoError(t, err)
	require.Equal(t, payload, value, "value = the payload, byte for byte")
	require.True(t, at.Equal(pm.Timestamp), "timestamp = occurred-at, got %s", pm.Timestamp)
	headers := map[string]string{}
	for _, h := range pm.Headers {
		_, dup := headers[string(h.Key)]
		require.False(t, dup, "header %s twice", h.Key)
		headers[string(h.Key)] = string(h.Value)
	}
	require.Equal(t, map[string]string(msg.Metadata), headers, "the metadata, nothing else")
	var order []string
	for _, h := range pm.Headers {
		order = append(order, string(h.Key))
	}
	require.Equal(t, []string{"ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time", "content-type",
		"ce_aggregatetype", "ce_aggregateversion", "ce_eventversion", "ce_correlationid", "x-meta-a", "x-meta-b"}, order,
		"one message, one record: a fixed header order")
	require.NotContains(t, headers, "_watermill_message_uuid")

	back, err := newMarshaler().Unmarshal(&sarama.ConsumerMessage{Value: value, Headers: toPtrs(pm.Headers)})
	require.NoError(t, err)
	require.Equal(t, "e1", back.UUID)
	require.Equal(t, msg.Metadata, back.Metadata)
	require.Equal(t, payload, []byte(back.Payload))
}

// A message that is not an event (no ce_id, no aggregate) keeps its UUID:
// it travels as ce_id, and the UUID is the key.
func TestMarshalerPlainMessage(t *testing.T) {
	t.Parallel()
	plain := message.NewMessage("m-1", []byte("x"))
	plain.Metadata.Set("k", "v")
	plain.Metadata.Set(wire.HeaderOccurredAt, "not a time")
	pm, err := newMarshaler().Marshal("t", plain)
	require.NoError(t, err)
	key, err := pm.Key.Encode()
	require.NoError(t, err)
	require.Equal(t, "m-1", string(key))
	require.True(t, pm.Timestamp.IsZero(), "a bad time leaves the producer's clock; the message still goes out")
	back, err := newMarshaler().Unmarshal(&sarama.ConsumerMessage{Value: []byte("x"), Headers: toPtrs(pm.Headers)})
	require.NoError(t, err)
	require.Equal(t, "m-1", back.UUID)
	require.Equal(t, "v", back.Metadata.Get("k"))
}

// An event that occurred in the future by this clock gets the producer's
// clock as record timestamp (brokers refuse records too far ahead); its
// ce_time keeps the occurred-at.
func TestMarshalerFutureOccurredAt(t *testing.T) {
	t.Parallel()
	future := time.Now().Add(3 * time.Hour)
	msg := wire.ToMessage(aggregate.Envelope{ID: "e1", Name: "n", AggregateType: "user", AggregateID: "u-9", Version: 1,
		OccurredAt: future}, "urn:test", nil, 1)
	pm, err := newMarshaler().Marshal("t", msg)
	require.NoError(t, err)
	require.True(t, pm.Timestamp.IsZero(), "the producer stamps it")
	require.Equal(t, future.UTC().Format(time.RFC3339Nano), msg.Metadata.Get(wire.HeaderOccurredAt))
}

// A record as dddkit wrote it before CloudEvents: the UUID comes from
// watermill's header, which does not end up in the metadata.
func TestUnmarshalLegacyRecord(t *testing.T) {
	t.Parallel()
	back, err := newMarshaler().Unmarshal(&sarama.ConsumerMessage{Value: []byte(`{}`), Headers: []*sarama.RecordHeader{
		{Key: []byte("_watermill_message_uuid"), Value: []byte("e-legacy")},
		{Key: []byte("event_id"), Value: []byte("e-legacy")},
		{Key: []byte("event_name"), Value: []byte("n")},
		nil,
	}})
	require.NoError(t, err)
	require.Equal(t, "e-legacy", back.UUID)
	require.Equal(t, message.Metadata{"event_id": "e-legacy", "event_name": "n"}, back.Metadata)
}

// Headers in any order, unknown and empty ones, and nil entries all
// come back as the record had them.
func TestUnmarshalHeadersInAnyOrder(t *testing.T) {
	back, err := newMarshaler().Unmarshal(&sarama.ConsumerMessage{Value: []byte(`{}`), Headers: []*sarama.RecordHeader{
		{Key: []byte("x-meta-tenant"), Value: []byte("acme")},
		{Key: []byte(wire.HeaderAggregateID), Value: []byte("a-1")},
		nil,
		{Key: []byte(wire.HeaderEventID), Value: []byte("e-1")},
		{Key: []byte(wire.HeaderTraceState), Value: nil},
		{Key: []byte(wire.HeaderSpecVersion), Value: []byte("1.0")},
		{Key: []byte("ce_idx"), Value: []byte("not the id")},
	}})
	require.NoError(t, err)
	require.Equal(t, message.Metadata{
		"x-meta-tenant": "acme", wire.HeaderAggregateID: "a-1", wire.HeaderEventID: "e-1",
		wire.HeaderTraceState: "", wire.HeaderSpecVersion: "1.0", "ce_idx": "not the id",
	}, back.Metadata)
	require.Equal(t, "e-1", back.UUID)
}

func toPtrs(hs []sarama.RecordHeader) []*sarama.RecordHeader {
	out := make([]*sarama.RecordHeader, len(hs))
	for i := range hs {
		out[i] = &hs[i]
	}
	return out
}

// BenchmarkMarshal compares the marshaler with the one it replaced
// (watermill-kafka's, keyed by aggregate ID, on the legacy headers) for a
// typical event: the per-message cost of the CloudEvents headers, their
// fixed order and the timestamp.
func BenchmarkMarshal(b *testing.B) {
	env := aggregate.Envelope{ID: "019ad0c4-5d2e-7c41-9a57-2f0b8e6c1d3a", Name: "auth.user_registered", AggregateType: "user",
		AggregateID: "019ad0c4-5d2b-7f10-8c2e-9e4b1a7d6f20", Version: 1, OccurredAt: time.Now().Add(-time.Second),
		Metadata: aggregate.Metadata{CorrelationID: "req-7f3a9c", CausationID: "cmd-register-7f3a9c"}}
	payload := []byte(`{"userId":"019ad0c4-5d2b-7f10-8c2e-9e4b1a7d6f20","email":"ada@example.com"}`)
	b.Run("cloudevents", func(b *testing.B) {
		m := newMarshaler()
		b.ReportAllocs()
		for b.Loop() {
			msg := wire.ToMessage(env, "urn:dddkit:authnotify", payload, 1)
			if _, err := m.Marshal("user.events", msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("event-record", func(b *testing.B) { // the relay's path: no message in between
		evs := []wire.Event{{Envelope: &env, Payload: payload, SchemaVersion: 1}}
		b.ReportAllocs()
		for b.Loop() {
			eventRecords("user.events", "urn:dddkit:authnotify", evs, nil)
		}
	})
	b.Run("event-records-of-2000", func(b *testing.B) { // one relay publisher call: per record
		evs := make([]wire.Event, 2000)
		for i := range evs {
			e := env
			e.AggregateID = fmt.Sprint("cart-", i)
			evs[i] = wire.Event{Envelope: &e, Payload: payload, SchemaVersion: 1}
		}
		b.ReportAllocs()
		for b.Loop() {
			eventRecords("user.events", "urn:dddkit:authnotify", evs, nil)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/record")
	})
	b.Run("event-records-of-2000-reused", func(b *testing.B) { // the same over the memory of the call before
		evs := make([]wire.Event, 2000)
		for i := range evs {
			e := env
			e.AggregateID = fmt.Sprint("cart-", i)
			evs[i] = wire.Event{Envelope: &e, Payload: payload, SchemaVersion: 1}
		}
		mem := new(recordMemory)
		b.ReportAllocs()
		for b.Loop() {
			eventRecords("user.events", "urn:dddkit:authnotify", evs, mem)
			mem.reset()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(evs)), "ns/record")
	})
	b.Run("unmarshal", func(b *testing.B) {
		m := newMarshaler()
		pm, err := m.Marshal("user.events", wire.ToMessage(env, "urn:dddkit:authnotify", payload, 1))
		require.NoError(b, err)
		cm := &sarama.ConsumerMessage{Value: payload, Headers: toPtrs(pm.Headers)}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Unmarshal(cm); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("legacy-watermill", func(b *testing.B) {
		m := wmkafka.NewWithPartitioningMarshaler(func(_ string, msg *message.Message) (string, error) {
			return msg.Metadata.Get("aggregate_id"), nil
		})
		b.ReportAllocs()
		for b.Loop() {
			msg := message.NewMessage(env.ID, payload)
			msg.Metadata = message.Metadata{
				"event_id": env.ID, "event_name": env.Name, "aggregate_type": env.AggregateType, "aggregate_id": env.AggregateID,
				"aggregate_version": "1", "occurred_at": env.OccurredAt.UTC().Format(time.RFC3339Nano),
				"content_type": "application/json", "event_version": "1",
				"correlation_id": env.Metadata.CorrelationID, "causation_id": env.Metadata.CausationID,
			}
			if _, err := m.Marshal("user.events", msg); err != nil {
				b.Fatal(err)
			}
		}
	})
}
