package kafka_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	cebinding "github.com/cloudevents/sdk-go/v2/binding"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
)

// These tests check dddkit's wire contract (docs/wire-contract.md) on a
// real broker: what the outbox relay writes is read by an independent
// implementation, the CloudEvents Go SDK, and a record in the format
// dddkit wrote before CloudEvents is still consumed.

// itemShipped's JSON keys are not in alphabetical order, nor in the order
// PostgreSQL's jsonb keeps them (shorter keys first): the bytes that
// reach Kafka show whether anything re-rendered the payload.
type itemShipped struct {
	Zeta  string `json:"zeta"`
	Alpha string `json:"alpha"`
	N     int    `json:"n"`
	Note  string `json:"note,omitempty"`
}

func (itemShipped) EventName() string { return "shop.item_shipped" }

// EventVersion makes the schema version visible on the wire.
func (itemShipped) EventVersion() int { return 2 }

// readRecords returns every record of topic, read with sarama alone.
func readRecords(t *testing.T, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	cfg := kafkatest.Config(t)
	client, err := sarama.NewClient(kafkatest.Brokers(t), cfg)
	require.NoError(t, err)
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	require.NoError(t, err)
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	require.NoError(t, err)
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		require.NoError(t, err)
		if hwm == 0 {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		require.NoError(t, err)
		timeout := time.After(60 * time.Second)
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				done = m.Offset >= hwm-1
			case err := <-pc.Errors():
				t.Fatalf("consume %s/%d: %v", topic, p, err)
			case <-timeout:
				t.Fatalf("partition %s/%d not read up to %d within 60s", topic, p, hwm)
			}
		}
		require.NoError(t, pc.Close())
	}
	return out
}

// The outbox relay writes through the PostgreSQL outbox and the Kafka
// client; the CloudEvents SDK reads every record back with the attributes
// dddkit encoded, and the value is the codec's bytes, byte for byte.
func TestCloudEventsSDKReadsWhatTheRelayWrote(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	topic := kafkatest.Topic(t, 3)
	const source = "//shop.example.com/orders"
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: source, Topic: func(string) string { return topic }})
	require.NoError(t, eventbus.Register[itemShipped](reg, eventbus.AggregateType("shipment")))
	ob, err := postgres.NewOutbox(pg.pool, reg, nil)
	require.NoError(t, err)

	// Occurred a minute ago, with nanoseconds (PostgreSQL keeps
	// microseconds, Kafka's timestamp milliseconds).
	base := time.Now().UTC().Add(-time.Minute).Truncate(time.Second).Add(123456789 * time.Nanosecond)
	var sent []aggregate.Envelope
	envelope := func(agg string, v int64, md aggregate.Metadata) aggregate.Envelope {
		return aggregate.Envelope{
			ID: "ev-" + agg + "-" + strconv.FormatInt(v, 10) + "-" + dddkittest.UniqueSuffix(), Name: "shop.item_shipped",
			AggregateType: "shipment", AggregateID: agg, Version: v, OccurredAt: base.Add(time.Duration(v) * time.Millisecond),
			Metadata: md,
			Payload:  itemShipped{Zeta: "z" + agg, Alpha: "a", N: int(v), Note: "ünïcode & <html>"},
		}
	}
	// Two events with every metadata field, written as a VALUES insert ...
	full := aggregate.Metadata{CorrelationID: "corr-1", CausationID: "cmd-1",
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
		Values: map[string]string{"tenant": "acme"}}
	sent = append(sent, envelope("s-1", 1, full), envelope("s-1", 2, full))
	require.NoError(t, ob.Write(context.Background(), sent...))
	// ... and 40 without metadata, written through unnest arrays.
	var bulk []aggregate.Envelope
	for i := range 40 {
		bulk = append(bulk, envelope("s-"+strconv.Itoa(2+i%5), int64(1+i/5), aggregate.Metadata{}))
	}
	require.NoError(t, ob.Write(context.Background(), bulk...))
	sent = append(sent, bulk...)

	relay, err := outbox.NewRelay(ob, newClient(t).Publisher(), reg, nil)
	require.NoError(t, err)
	n, err := relay.Flush(context.Background())
	require.NoError(t, err)
	require.Equal(t, len(sent), n)

	byID := make(map[string]aggregate.Envelope, len(sent))
	for _, env := range sent {
		byID[env.ID] = env
	}
	records := readRecords(t, topic)
	require.Len(t, records, len(sent))
	for _, rec := range records {
		msg := ceMessageFromConsumerMessage(rec)
		require.Equal(t, cebinding.EncodingBinary, msg.ReadEncoding(), "binary content mode")
		ev, err := cebinding.ToEvent(context.Background(), msg)
		require.NoError(t, err)
		require.NoError(t, ev.Validate())

		env, ok := byID[ev.ID()]
		require.True(t, ok, "unknown event %q", ev.ID())
		require.Equal(t, "1.0", ev.SpecVersion())
		require.Equal(t, "shop.item_shipped", ev.Type())
		require.Equal(t, source, ev.Source())
		require.Equal(t, env.AggregateID, ev.Subject())
		require.Equal(t, "application/json", ev.DataContentType())
		require.Empty(t, ev.DataSchema())
		require.Equal(t, env.OccurredAt.Truncate(time.Microsecond), ev.Time().UTC(), "time = occurred-at (microseconds, as PostgreSQL keeps it)")

		want := map[string]any{
			"aggregatetype": "shipment", "aggregateversion": strconv.FormatInt(env.Version, 10), "eventversion": "2",
			// added by the SDK's reader
			"kafkaoffset": strconv.FormatInt(rec.Offset, 10), "kafkapartition": strconv.Itoa(int(rec.Partition)), "kafkatopic": topic,
		}
		if env.Metadata.CorrelationID != "" {
			maps.Copy(want, map[string]any{"correlationid": "corr-1", "causationid": "cmd-1",
				"traceparent": full.TraceParent, "tracestate": full.TraceState})
		}
		require.Equal(t, want, ev.Extensions())

		payload, err := json.Marshal(env.Payload)
		require.NoError(t, err)
		require.Equal(t, string(payload), string(ev.Data()), "data = the codec's bytes")
		require.Equal(t, payload, rec.Value)

		require.Equal(t, env.AggregateID, string(rec.Key), "key = aggregate ID")
		require.Equal(t, env.OccurredAt.Truncate(time.Millisecond), rec.Timestamp.UTC(), "record timestamp = occurred-at")
		headers := map[string]string{}
		for _, h := range rec.Headers {
			headers[string(h.Key)] = string(h.Value)
		}
		require.NotContains(t, headers, "_watermill_message_uuid")
		if env.Metadata.CorrelationID != "" {
			require.Equal(t, "acme", headers["x-meta-tenant"], "free-form values are plain headers")
			require.Len(t, headers, 15)
		} else {
			require.Len(t, headers, 10)
		}
		delete(byID, ev.ID())
	}
	require.Empty(t, byID)
}

// A record exactly as dddkit wrote it before CloudEvents (watermill-kafka
// headers, written here with sarama alone) is still consumed: by a Router
// handler and by HandleOnce with the inbox.
func TestLegacyRecordIsStillConsumed(t *testing.T) {
	t.Parallel()
	pg := setupPG(t)
	k := setupKafka(t, 1)
	at := time.Date(2026, 11, 2, 3, 4, 5, 678901234, time.UTC)
	legacy := func(id, aggID string, amount int) *sarama.ProducerMessage {
		payload, err := json.Marshal(orderPlaced{OrderID: aggID, Amount: amount})
		require.NoError(t, err)
		headers := map[string]string{
			"_watermill_message_uuid": id,
			"event_id":                id, "event_name": "shop.order_placed", "event_version": "1",
			"aggregate_type": "order", "aggregate_id": aggID, "aggregate_version": "4",
			"occurred_at": at.Format(time.RFC3339Nano), "content_type": "application/json",
			"correlation_id": "corr-legacy", "causation_id": "cmd-legacy",
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "x-meta-tenant": "acme",
		}
		pm := &sarama.ProducerMessage{Topic: k.topic, Key: sarama.StringEncoder(aggID), Value: sarama.ByteEncoder(payload)}
		for _, name := range slices.Sorted(maps.Keys(headers)) {
			pm.Headers = append(pm.Headers, sarama.RecordHeader{Key: []byte(name), Value: []byte(headers[name])})
		}
		return pm
	}
	cfg := kafkatest.Config(t)
	cfg.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(kafkatest.Brokers(t), cfg)
	require.NoError(t, err)
	id := "legacy-" + dddkittest.UniqueSuffix()
	require.NoError(t, prod.SendMessages([]*sarama.ProducerMessage{legacy(id, "o-legacy", 42)}))
	require.NoError(t, prod.Close())

	var (
		mu   sync.Mutex
		seen []aggregate.Envelope
		got  []orderPlaced
	)
	var calls atomic.Int64
	r := k.router(t, nil)
	require.NoError(t, eventbus.Handle(r, "legacy-reader", func(_ context.Context, e orderPlaced, env aggregate.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		seen, got = append(seen, env), append(got, e)
		return nil
	}))
	require.NoError(t, eventbus.HandleOnce(r, "legacy-ledger", pg.inbox, applyOrder(&calls)))
	start(t, r)

	testinfra.Eventually(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 1 && pg.count(t, `SELECT count(*) FROM effects WHERE event_id = $1`, id) == 1
	}, "legacy record not consumed")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, orderPlaced{OrderID: "o-legacy", Amount: 42}, got[0])
	require.Equal(t, aggregate.Envelope{
		ID: id, Name: "shop.order_placed", AggregateType: "order", AggregateID: "o-legacy", Version: 4, OccurredAt: at,
		Metadata: aggregate.Metadata{CorrelationID: "corr-legacy", CausationID: "cmd-legacy",
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", Values: map[string]string{"tenant": "acme"}},
		Payload: orderPlaced{OrderID: "o-legacy", Amount: 42},
	}, seen[0])
	require.True(t, pg.processed(t, "legacy-ledger", id), "the inbox keys it by the legacy event_id")
}

// The broker refuses a record stamped hours ahead of its clock
// (log.message.timestamp.after.max.ms, one hour by default since Kafka
// 4.0); an event whose occurred-at is that far ahead (a skewed clock where
// it was recorded) is still published, stamped with the producer's clock,
// its ce_time unchanged.
func TestFutureOccurredAtIsPublished(t *testing.T) {
	t.Parallel()
	k := setupKafka(t, 1)
	future := time.Now().UTC().Add(3 * time.Hour).Truncate(time.Microsecond)

	cfg := kafkatest.Config(t)
	cfg.Producer.Return.Successes = true
	prod, err := sarama.NewSyncProducer(kafkatest.Brokers(t), cfg)
	require.NoError(t, err)
	_, _, err = prod.SendMessage(&sarama.ProducerMessage{Topic: k.topic, Value: sarama.StringEncoder("{}"), Timestamp: future})
	require.ErrorIs(t, err, sarama.ErrInvalidTimestamp, "the broker refuses a record from the future")
	require.NoError(t, prod.Close())

	env := order("o-future", 1)
	env.OccurredAt = future
	require.NoError(t, k.pub.Publish(context.Background(), env))
	records := readRecords(t, k.topic)
	require.Len(t, records, 1)
	require.True(t, records[0].Timestamp.Before(future), "stamped by the producer: %s", records[0].Timestamp)
	var ceTime string
	for _, h := range records[0].Headers {
		if string(h.Key) == eventbus.HeaderOccurredAt {
			ceTime = string(h.Value)
		}
	}
	require.Equal(t, future.Format(time.RFC3339Nano), ceTime, "ce_time keeps the occurred-at")
}
