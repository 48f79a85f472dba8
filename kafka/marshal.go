package kafka

import (
	"slices"
	"strings"
	"sync"
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

// eventRecords returns the records of evs on topic: those Marshal makes
// of the messages wire.ToMessage(*ev.Envelope, source, ev.Payload,
// ev.SchemaVersion) builds, without those messages in between. sarama
// holds a record until it is acknowledged, and the records of one
// publisher call are acknowledged together: they are built in mem (the
// records in one slice, their headers and the headers' bytes in chunks),
// not in several allocations each, and mem serves a later call once
// Kafka has answered for all of them (recordMemory).
func eventRecords(topic, source string, evs []wire.Event, mem *recordMemory) []*sarama.ProducerMessage {
	rs, pms := mem.records(len(evs))
	// Chunks for up to 64 events at a time (fewer for a smaller call):
	// a few for a large call, little waste for a small one.
	per := min(len(evs), 64)
	b := builder{now: time.Now(), mem: mem, perChunk: per, bytesChunk: per * 256}
	for i := range evs {
		env := evs[i].Envelope
		values := wire.EventHeaders(*env, source, evs[i].SchemaVersion)
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
		pms[i] = b.fill(&rs[i], topic, key, evs[i].Payload, &values, rest, at)
	}
	return pms
}

// record is what a message is built of: the message with its key and
// value encoders, in one allocation (a pointer into a record keeps all
// of it).
type record struct {
	msg   sarama.ProducerMessage
	key   sarama.StringEncoder
	value sarama.ByteEncoder
}

// header is a record header as strings.
type header struct{ key, value string }

// builder fills records, taking their headers and the headers' bytes
// from shared chunks: of headers for perChunk records with as many
// headers as the one that needs a new chunk (an event's headers are
// mostly those of the others of its call), and of at least bytesChunk
// bytes; from mem when it has one. now is the producer's clock for all
// of them.
type builder struct {
	now        time.Time
	mem        *recordMemory
	headers    []sarama.RecordHeader
	bytes      []byte
	perChunk   int
	bytesChunk int
}

// copyOf returns a copy of s (with no room to append to).
func (b *builder) copyOf(s string) []byte {
	if len(s) > cap(b.bytes)-len(b.bytes) {
		b.bytes = b.mem.bytesChunk(max(b.bytesChunk, len(s)))
	}
	n := len(b.bytes)
	b.bytes = append(b.bytes, s...)
	return b.bytes[n:len(b.bytes):len(b.bytes)]
}

// fill makes r the record of topic with key and value, the headers of
// wire.Headers that values gives a value (by index), then rest, which it
// sorts by name; its timestamp is at, unless at is zero or after the
// producer's clock.
func (b *builder) fill(r *record, topic, key string, value []byte, values *[len(wire.Headers)]string, rest []header, at time.Time) *sarama.ProducerMessage {
	slices.SortFunc(rest, func(a, b header) int { return strings.Compare(a.key, b.key) })
	n := len(rest)
	for _, v := range values {
		if v != "" {
			n++
		}
	}
	if n > cap(b.headers)-len(b.headers) {
		b.headers = b.mem.headersChunk(max(b.perChunk, 1) * n)
	}
	start := len(b.headers)
	for i, v := range values {
		if v != "" {
			b.headers = append(b.headers, sarama.RecordHeader{Key: headerKeys[i], Value: b.copyOf(v)})
		}
	}
	for _, h := range rest {
		b.headers = append(b.headers, sarama.RecordHeader{Key: b.copyOf(h.key), Value: b.copyOf(h.value)})
	}
	r.key, r.value = sarama.StringEncoder(key), sarama.ByteEncoder(value)
	r.msg = sarama.ProducerMessage{}
	pm := &r.msg
	pm.Topic, pm.Key, pm.Value = topic, &r.key, &r.value
	pm.Headers = b.headers[start:len(b.headers):len(b.headers)]
	// A time in the future (a skewed clock elsewhere) leaves the
	// producer's: the broker could refuse it.
	if !at.IsZero() && at.Before(b.now) {
		pm.Timestamp = at
	}
	return pm
}

// newRecord is the record of one message (see builder.fill): the
// record and its headers in one allocation, their bytes in another.
func newRecord(topic, key string, value []byte, values *[len(wire.Headers)]string, rest []header, at time.Time) *sarama.ProducerMessage {
	var one struct {
		r       record
		headers [len(wire.Headers)]sarama.RecordHeader
	}
	p := &one // escapes: one allocation
	size := 0
	for _, v := range values {
		size += len(v)
	}
	for _, h := range rest {
		size += len(h.key) + len(h.value)
	}
	b := builder{now: time.Now(), headers: p.headers[:0], bytesChunk: size}
	return b.fill(&p.r, topic, key, value, values, rest, at)
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

// recordMemory is the memory of one publisher call's records: the
// records, their headers and the headers' bytes. Kafka answering for
// every record of the call (acknowledged, or failed for good) ends
// sarama's use of them; then release hands the memory to a later call
// (recordMemories), which builds its records over it. A call that stops
// waiting before that (its context ended) leaves its memory to the
// garbage collector. The zero recordMemory, and a nil one, allocate.
type recordMemory struct {
	rs      []record
	pms     []*sarama.ProducerMessage
	headers [][]sarama.RecordHeader // chunks; the first h in use
	bytes   [][]byte                // chunks; the first b in use
	h, b    int
}

// recordMemories holds the released recordMemory of earlier calls.
var recordMemories = sync.Pool{New: func() any { return new(recordMemory) }}

// records returns n records and their pointers.
func (m *recordMemory) records(n int) ([]record, []*sarama.ProducerMessage) {
	if m == nil {
		return make([]record, n), make([]*sarama.ProducerMessage, n)
	}
	if cap(m.rs) < n {
		m.rs, m.pms = make([]record, n), make([]*sarama.ProducerMessage, n)
	}
	m.rs, m.pms = m.rs[:n], m.pms[:n]
	return m.rs, m.pms
}

// headersChunk returns an empty chunk with room for n headers.
func (m *recordMemory) headersChunk(n int) []sarama.RecordHeader {
	if m == nil {
		return make([]sarama.RecordHeader, 0, n)
	}
	for ; m.h < len(m.headers); m.h++ {
		if c := m.headers[m.h]; cap(c) >= n {
			m.h++
			return c[:0]
		}
	}
	c := make([]sarama.RecordHeader, 0, n)
	m.headers = append(m.headers, c)
	m.h = len(m.headers)
	return c
}

// bytesChunk returns an empty chunk with room for n bytes.
func (m *recordMemory) bytesChunk(n int) []byte {
	if m == nil {
		return make([]byte, 0, n)
	}
	for ; m.b < len(m.bytes); m.b++ {
		if c := m.bytes[m.b]; cap(c) >= n {
			m.b++
			return c[:0]
		}
	}
	c := make([]byte, 0, n)
	m.bytes = append(m.bytes, c)
	m.b = len(m.bytes)
	return c
}

// release hands m to a later call (reset first).
func (m *recordMemory) release() {
	m.reset()
	recordMemories.Put(m)
}

// reset readies m for another call's records. Its records no longer
// refer to the events' keys and payloads.
func (m *recordMemory) reset() {
	clear(m.rs)
	clear(m.pms)
	m.h, m.b = 0, 0
}
