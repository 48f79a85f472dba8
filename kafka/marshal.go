package kafka

import (
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/internal/wire"
)

// marshaler maps dddkit's messages onto Kafka records and back: the
// CloudEvents Kafka protocol binding in binary content mode, as package
// wire builds the messages.
//
//   - Key: the aggregate ID ([partitionKey]), so the events of one
//     aggregate share a partition and keep their order.
//   - Value: the message payload, byte for byte (the codec's JSON).
//   - Timestamp: the event's occurred-at time (its ce_time header); the
//     producer's clock for a message without one, and for one that
//     occurred in the future by the producer's clock (a skewed clock
//     elsewhere): brokers refuse records more than
//     log.message.timestamp.after.max.ms ahead (one hour by default
//     since Kafka 4.0), which would fail the event for good.
//   - Headers: the message metadata as it is (ce_* attributes,
//     content-type, x-meta-*), and the message UUID as ce_id when the
//     metadata has no ce_id (dddkit's events always do: their UUID is the
//     event ID). The contract's headers come first, in the order of
//     wire.Headers, then the others sorted by name, so that one message
//     always makes the same record.
//
// Unmarshal gives the message the UUID ce_id (or, for records in the
// legacy format, event_id or watermill-kafka's _watermill_message_uuid)
// and every other header as metadata.
type marshaler struct{}

var _ wmkafka.MarshalerUnmarshaler = marshaler{}

// newMarshaler returns the wire marshaler of every message dddkit sends
// or receives through Kafka.
func newMarshaler() marshaler { return marshaler{} }

// partitionKey returns the Kafka message key of msg: its aggregate ID
// (the wire.HeaderAggregateID header), or the message UUID when the
// header is absent. All events of one aggregate thus land on one
// partition and keep their order.
func partitionKey(msg *message.Message) string {
	if id := msg.Metadata.Get(wire.HeaderAggregateID); id != "" {
		return id
	}
	return msg.UUID
}

// headerKeys are the names of wire.Headers as bytes, shared by every
// record (the producer only reads them).
var headerKeys = func() (k [len(wire.Headers)][]byte) {
	for i, h := range wire.Headers {
		k[i] = []byte(h)
	}
	return k
}()

// headerIndex returns the index in wire.Headers of the header named key,
// or -1. It looks at next first: Marshal writes them in that order.
func headerIndex(key []byte, next int) int {
	for n := range len(headerKeys) {
		i := (next + n) % len(headerKeys)
		if string(headerKeys[i]) == string(key) {
			return i
		}
	}
	return -1
}

// Marshal maps msg onto a record of topic. It allocates the header
// values of a record together, in one buffer.
func (marshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	md := msg.Metadata
	var (
		values [len(wire.Headers)]string
		known  int
	)
	for i, k := range wire.Headers {
		v, ok := md[k]
		if ok {
			known++
		}
		if k == wire.HeaderEventID && v == "" {
			v = msg.UUID
		}
		values[i] = v
	}
	var rest []header
	if len(md) > known {
		rest = make([]header, 0, len(md)-known)
		for k, v := range md {
			if !slices.Contains(wire.Headers[:], k) {
				rest = append(rest, header{k, v})
			}
		}
	}
	// A time that does not parse leaves the producer's clock: the
	// message still goes out (a dead letter must never be refused).
	var at time.Time
	if s := md[wire.HeaderOccurredAt]; s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			at = t
		}
	}
	return newRecord(topic, partitionKey(msg), msg.Payload, &values, rest, at), nil
}

// eventRecord is the record of ev on topic: the one Marshal makes of
// the message wire.ToMessage(ev.Envelope, source, ev.Payload,
// ev.SchemaVersion) builds, without that message in between.
func eventRecord(topic, source string, ev *wire.Event) *sarama.ProducerMessage {
	env := &ev.Envelope
	values := wire.EventHeaders(*env, source, ev.SchemaVersion)
	var rest []header
	if len(env.Metadata.Values) > 0 {
		rest = make([]header, 0, len(env.Metadata.Values))
		for k, v := range env.Metadata.Values {
			rest = append(rest, header{wire.HeaderValuePrefix + k, v})
		}
	}
	// The times Marshal can parse back: RFC 3339 has four-digit years.
	at := env.OccurredAt
	if y := at.UTC().Year(); y < 0 || y > 9999 {
		at = time.Time{}
	}
	key := env.AggregateID
	if key == "" {
		key = env.ID // partitionKey: the message UUID
	}
	return newRecord(topic, key, ev.Payload, &values, rest, at)
}

// record is what newRecord builds a message of.
type record struct {
	msg     sarama.ProducerMessage
	key     sarama.StringEncoder
	value   sarama.ByteEncoder
	headers [len(wire.Headers)]sarama.RecordHeader
}

// header is a record header as strings.
type header struct{ key, value string }

// newRecord builds a record of topic: its key and value, the headers of
// wire.Headers that values gives a value (by index), then rest, which it
// sorts by name, with all their bytes in one buffer; its timestamp is at,
// unless at is zero or after the producer's clock.
func newRecord(topic, key string, value []byte, values *[len(wire.Headers)]string, rest []header, at time.Time) *sarama.ProducerMessage {
	slices.SortFunc(rest, func(a, b header) int { return strings.Compare(a.key, b.key) })
	size, n := 0, len(rest)
	for _, v := range values {
		size += len(v)
		if v != "" {
			n++
		}
	}
	for _, h := range rest {
		size += len(h.key) + len(h.value)
	}
	buf := make([]byte, 0, size)
	bytesOf := func(s string) []byte {
		n := len(buf)
		buf = append(buf, s...)
		return buf[n:len(buf):len(buf)]
	}
	// One allocation for the message, its key and value encoders and
	// (usually) its headers: sarama holds the message until it is
	// acknowledged, and a pointer into r keeps all of r.
	r := &record{key: sarama.StringEncoder(key), value: sarama.ByteEncoder(value)}
	headers := r.headers[:0]
	if n > len(r.headers) {
		headers = make([]sarama.RecordHeader, 0, n)
	}
	for i, v := range values {
		if v != "" {
			headers = append(headers, sarama.RecordHeader{Key: headerKeys[i], Value: bytesOf(v)})
		}
	}
	for _, h := range rest {
		headers = append(headers, sarama.RecordHeader{Key: bytesOf(h.key), Value: bytesOf(h.value)})
	}
	pm := &r.msg
	pm.Topic, pm.Key, pm.Value, pm.Headers = topic, &r.key, &r.value, headers
	// A time in the future (a skewed clock elsewhere) leaves the
	// producer's: the broker could refuse it.
	if !at.IsZero() && at.Before(time.Now()) {
		pm.Timestamp = at
	}
	return pm
}

// Unmarshal maps a consumed record onto a message.
// It allocates no string for the names of wire.Headers and one for all
// header values (each value is a part of it).
func (marshaler) Unmarshal(m *sarama.ConsumerMessage) (*message.Message, error) {
	md := make(message.Metadata, len(m.Headers))
	size := 0
	for _, h := range m.Headers {
		if h != nil {
			size += len(h.Value)
		}
	}
	values := make([]byte, 0, size)
	for _, h := range m.Headers {
		if h != nil {
			values = append(values, h.Value...)
		}
	}
	all := string(values)
	next := 0
	for _, h := range m.Headers {
		if h == nil {
			continue
		}
		v := all[:len(h.Value)]
		all = all[len(h.Value):]
		if i := headerIndex(h.Key, next); i >= 0 {
			md[wire.Headers[i]] = v
			next = i + 1
		} else {
			md[string(h.Key)] = v
		}
	}
	msg := message.NewMessage(wire.MessageUUID(md), m.Value)
	msg.Metadata = md
	return msg, nil
}
