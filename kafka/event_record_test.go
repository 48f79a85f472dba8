package kafka

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
)

// requireSameRecord fails unless the relay's record of ev (eventRecords)
// is the record Marshal makes of ev's message (wire.ToMessage): same
// topic, key, value, headers in the same order, and timestamp.
func requireSameRecord(t *testing.T, ev wire.Event) {
	t.Helper()
	requireSameRecordAs(t, ev, eventRecords(recordTopic, recordSource, []wire.Event{ev}, nil)[0])
}

const recordTopic, recordSource = "user.events", "urn:dddkit:test"

// requireSameRecordAs fails unless got is the record Marshal makes of
// ev's message.
func requireSameRecordAs(t *testing.T, ev wire.Event, got *sarama.ProducerMessage) {
	t.Helper()
	want, err := newMarshaler().Marshal(recordTopic, wire.ToMessage(*ev.Envelope, recordSource, ev.Payload, ev.SchemaVersion))
	require.NoError(t, err)
	require.Equal(t, want.Topic, got.Topic)
	require.Equal(t, encoded(t, want.Key), encoded(t, got.Key), "key")
	require.Equal(t, encoded(t, want.Value), encoded(t, got.Value), "value")
	require.Equal(t, headerPairs(want.Headers), headerPairs(got.Headers), "headers, in order")
	require.True(t, want.Timestamp.Equal(got.Timestamp), "timestamp: want %s, got %s", want.Timestamp, got.Timestamp)
	require.Equal(t, want.ByteSize(2), got.ByteSize(2), "size")
}

func encoded(t *testing.T, e sarama.Encoder) []byte {
	t.Helper()
	b, err := e.Encode()
	require.NoError(t, err)
	return b
}

func headerPairs(hs []sarama.RecordHeader) [][2]string {
	out := make([][2]string, len(hs))
	for i, h := range hs {
		out[i] = [2]string{string(h.Key), string(h.Value)}
	}
	return out
}

func TestEventRecordIsTheRecordOfTheEventsMessage(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*3600))
	base := aggregate.Envelope{ID: "019ad0c4-5d2e-7c41-9a57-2f0b8e6c1d3a", Name: "auth.user_registered", AggregateType: "user",
		AggregateID: "u-9", Version: 7, OccurredAt: at}
	with := func(f func(*aggregate.Envelope)) aggregate.Envelope {
		env := base
		f(&env)
		return env
	}
	for name, env := range map[string]aggregate.Envelope{
		"plain": base,
		"all metadata": with(func(e *aggregate.Envelope) {
			e.Metadata = aggregate.Metadata{CorrelationID: "req-1", CausationID: "cmd-1",
				TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "congo=t61rcWkgMzE",
				Values: map[string]string{"tenant": "acme", "agent": "curl", "empty": "", "Z": "last?"}}
		}),
		"no occurred-at":         with(func(e *aggregate.Envelope) { e.OccurredAt = time.Time{} }),
		"occurred in the future": with(func(e *aggregate.Envelope) { e.OccurredAt = time.Now().Add(time.Hour) }),
		"year 10000":             with(func(e *aggregate.Envelope) { e.OccurredAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"year -1":                with(func(e *aggregate.Envelope) { e.OccurredAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"year 1":                 with(func(e *aggregate.Envelope) { e.OccurredAt = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC) }),
		"year 0":                 with(func(e *aggregate.Envelope) { e.OccurredAt = time.Date(0, 6, 1, 0, 0, 0, 0, time.UTC) }),
		"negative version":       with(func(e *aggregate.Envelope) { e.Version = -3 }),
		"no aggregate ID":        with(func(e *aggregate.Envelope) { e.AggregateID = "" }),
		"nothing":                {},
	} {
		t.Run(name, func(t *testing.T) {
			requireSameRecord(t, wire.Event{Envelope: &env, Payload: []byte(`{"email":"ada@example.com"}`), SchemaVersion: 2})
		})
	}
}

// The records of one call share their allocations (the header bytes in
// chunks of 32 KiB): each is still its own event's, across chunks.
func TestEventRecordsOfOneCallAreEachTheirEvents(t *testing.T) {
	t.Parallel()
	evs := make([]wire.Event, 600) // about 150 KiB of header bytes
	for i := range evs {
		evs[i] = wire.Event{Envelope: &aggregate.Envelope{ID: fmt.Sprintf("019ad0c4-5d2e-7c41-9a57-%012d", i), Name: "auth.user_registered",
			AggregateType: "user", AggregateID: fmt.Sprintf("u-%d", i), Version: int64(i + 1),
			OccurredAt: time.Date(2026, 5, 6, 7, 8, 9, i, time.UTC),
			Metadata: aggregate.Metadata{CorrelationID: strings.Repeat("c", i%97),
				Values: map[string]string{"tenant": fmt.Sprint("t", i), "n": strings.Repeat("v", i%211)}}},
			Payload: fmt.Appendf(nil, `{"n":%d}`, i), SchemaVersion: 1 + i%3}
	}
	got := eventRecords(recordTopic, recordSource, evs, nil)
	require.Len(t, got, len(evs))
	for i := range evs {
		requireSameRecordAs(t, evs[i], got[i])
	}
}

// A call's records built over the released memory of an earlier call's
// (records, headers and bytes reused) are each their own event's, and
// refer to no event of the earlier call.
func TestEventRecordsOverReleasedMemory(t *testing.T) {
	t.Parallel()
	event := func(i int, meta int) wire.Event {
		env := aggregate.Envelope{ID: fmt.Sprintf("019ad0c4-5d2e-7c41-9a57-%012d", i), Name: "auth.user_registered",
			AggregateType: "user", AggregateID: fmt.Sprintf("u-%d", i), Version: int64(i + 1),
			OccurredAt: time.Date(2026, 5, 6, 7, 8, 9, i, time.UTC)}
		if meta > 0 {
			env.Metadata = aggregate.Metadata{CorrelationID: strings.Repeat("c", meta), TraceParent: "00-" + strings.Repeat("a", 32) + "-" + strings.Repeat("b", 16) + "-01",
				Values: map[string]string{"tenant": fmt.Sprint("t", i), "n": strings.Repeat("v", meta)}}
		}
		return wire.Event{Envelope: &env, Payload: fmt.Appendf(nil, `{"n":%d}`, i), SchemaVersion: 1 + i%3}
	}
	mem := new(recordMemory)
	// First call: 300 events with many, long headers; then a call of 500
	// with none but the required ones, then one like the first.
	var chunks [2]int
	for round, shape := range []struct{ n, meta int }{{300, 150}, {500, 0}, {300, 150}} {
		if round == 2 {
			chunks = [2]int{len(mem.headers), len(mem.bytes)}
		}
		evs := make([]wire.Event, shape.n)
		for i := range evs {
			evs[i] = event(1000*round+i, shape.meta*(i%2))
		}
		got := eventRecords(recordTopic, recordSource, evs, mem)
		require.Len(t, got, len(evs))
		for i := range evs {
			requireSameRecordAs(t, evs[i], got[i])
		}
		mem.reset() // what release does before handing it on
		require.Zero(t, mem.h)
		for _, r := range mem.rs {
			require.Nil(t, r.msg.Value, "no payload kept by released memory")
		}
	}
	require.Equal(t, chunks, [2]int{len(mem.headers), len(mem.bytes)}, "a call like the first builds in the first's chunks")
}

func FuzzEventRecord(f *testing.F) {
	f.Add("e1", "auth.user_registered", "user", "u-1", int64(1), int64(1778051289123456789), "req-1", "", "tenant", "acme", []byte(`{}`), 1)
	f.Add("", "", "", "", int64(-1), int64(-62135596800000000), "", "tp", "", "", []byte(nil), 0)
	f.Add("é", "n\x00", "t", "ü", int64(1<<62), int64(1<<62), "c", "00-x", "k\xff", "v\n", []byte("x"), -7)
	f.Fuzz(func(t *testing.T, id, name, aggType, aggID string, version, unixNanos int64, corr, traceParent, key, value string, payload []byte, schemaVersion int) {
		env := aggregate.Envelope{ID: id, Name: name, AggregateType: aggType, AggregateID: aggID, Version: version,
			OccurredAt: time.Unix(0, unixNanos), Metadata: aggregate.Metadata{CorrelationID: corr, TraceParent: traceParent}}
		if key != "" || value != "" {
			env.Metadata.Values = map[string]string{key: value, key + "2": value}
		}
		requireSameRecord(t, wire.Event{Envelope: &env, Payload: payload, SchemaVersion: schemaVersion})
	})
}

// A delivery's record memory is released only once Kafka has answered
// for every record: before, sarama may still hold them.
func TestDeliveryReleasesItsRecordsOnlyWhenDone(t *testing.T) {
	t.Parallel()
	c := &call{done: make(chan struct{})}
	c.remaining.Store(2)
	mem := new(recordMemory)
	mem.records(2)
	d := &Delivery{c: c, topic: recordTopic, n: 2, mem: mem}
	c.ack(nil)
	d.releaseDone() // one of two answered: kept
	require.Same(t, mem, d.mem)
	c.ack(nil)
	d.releaseDone()
	require.Nil(t, d.mem)
}
