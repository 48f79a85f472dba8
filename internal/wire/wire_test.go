package wire_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
)

func sample() aggregate.Envelope {
	return aggregate.Envelope{
		ID: "0190-e1", Name: "auth.user_registered", AggregateType: "user", AggregateID: "u-1", Version: 7,
		OccurredAt: time.Date(2026, 3, 4, 5, 6, 7, 891011, time.FixedZone("x", 3600)),
		Metadata: aggregate.Metadata{CorrelationID: "corr", CausationID: "cause",
			TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "congo=t61rcWkgMzE",
			Values: map[string]string{"tenant": "t1", "ua": "curl"}},
	}
}

func TestToMessageRoundTrip(t *testing.T) {
	t.Parallel()
	env := sample()
	msg := wire.ToMessage(env, "urn:service:auth", []byte(`{"email":"a@b.c"}`), 3)
	require.Equal(t, "0190-e1", msg.UUID)
	require.Equal(t, `{"email":"a@b.c"}`, string(msg.Payload))
	require.Equal(t, message.Metadata{
		"ce_specversion": "1.0", "ce_id": "0190-e1", "ce_type": "auth.user_registered",
		"ce_source": "urn:service:auth", "ce_time": "2026-03-04T04:06:07.000891011Z", "ce_subject": "u-1",
		"content-type": "application/json", "ce_aggregatetype": "user", "ce_aggregateversion": "7",
		"ce_eventversion": "3", "ce_correlationid": "corr", "ce_causationid": "cause",
		"ce_traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "ce_tracestate": "congo=t61rcWkgMzE",
		"x-meta-tenant": "t1", "x-meta-ua": "curl",
	}, msg.Metadata)

	back, err := wire.FromMessage(msg)
	require.NoError(t, err)
	env.OccurredAt = env.OccurredAt.UTC()
	require.Equal(t, env, back)
	v, err := wire.ParseEventVersion(msg.Metadata)
	require.NoError(t, err)
	require.Equal(t, 3, v)
	require.Equal(t, wire.ContentTypeJSON, wire.ContentType(msg.Metadata))

	// Version 1 is written too: a reader never guesses.
	require.Equal(t, "1", wire.ToMessage(env, "s", nil, 1).Metadata.Get(wire.HeaderEventVersion))
}

// legacyMetadata is a message's metadata exactly as dddkit wrote it
// before CloudEvents (watermill-kafka put the UUID in its own header).
func legacyMetadata() message.Metadata {
	return message.Metadata{
		"_watermill_message_uuid": "0190-e1",
		"event_id":                "0190-e1", "event_name": "auth.user_registered", "aggregate_type": "user", "aggregate_id": "u-1",
		"aggregate_version": "7", "occurred_at": "2026-03-04T04:06:07.000891011Z", "content_type": "application/json",
		"event_version": "2", "correlation_id": "corr", "causation_id": "cause",
		"traceparent":   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"x-meta-tenant": "t1", "x-meta-ua": "curl",
	}
}

func TestLegacyMessageDecodes(t *testing.T) {
	t.Parallel()
	md := legacyMetadata()
	require.Equal(t, "0190-e1", wire.MessageUUID(md))
	require.NotContains(t, md, "_watermill_message_uuid", "a transport detail, not metadata")
	msg := message.NewMessage("0190-e1", []byte(`{}`))
	msg.Metadata = md
	env, err := wire.FromMessage(msg)
	require.NoError(t, err)
	want := sample()
	want.OccurredAt = want.OccurredAt.UTC()
	want.Metadata.TraceState = "" // did not exist
	require.Equal(t, want, env)
	v, err := wire.ParseEventVersion(md)
	require.NoError(t, err)
	require.Equal(t, 2, v)
	require.Equal(t, wire.ContentTypeJSON, wire.ContentType(md))

	// Only watermill's UUID header: still the message's UUID.
	require.Equal(t, "w-1", wire.MessageUUID(map[string]string{"_watermill_message_uuid": "w-1"}))
	require.Empty(t, wire.MessageUUID(map[string]string{}))
}

func TestCloudEventsHeadersWinOverLegacy(t *testing.T) {
	t.Parallel()
	md := legacyMetadata()
	for k, v := range wire.ToMessage(aggregate.Envelope{ID: "ce-1", Name: "ce.name", AggregateType: "ce-type", AggregateID: "ce-agg",
		Version: 9, OccurredAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Metadata: aggregate.Metadata{CorrelationID: "ce-corr", CausationID: "ce-cause", TraceParent: "ce-tp"}}, "s", nil, 4).Metadata {
		md[k] = v
	}
	require.Equal(t, "ce-1", wire.MessageUUID(md))
	msg := message.NewMessage("ce-1", nil)
	msg.Metadata = md
	env, err := wire.FromMessage(msg)
	require.NoError(t, err)
	require.Equal(t, aggregate.Envelope{ID: "ce-1", Name: "ce.name", AggregateType: "ce-type", AggregateID: "ce-agg",
		Version: 9, OccurredAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		Metadata: aggregate.Metadata{CorrelationID: "ce-corr", CausationID: "ce-cause", TraceParent: "ce-tp",
			Values: map[string]string{"tenant": "t1", "ua": "curl"}}}, env)
	v, err := wire.ParseEventVersion(md)
	require.NoError(t, err)
	require.Equal(t, 4, v)
}

func TestFromMessageErrors(t *testing.T) {
	t.Parallel()
	msg := message.NewMessage("id-1", nil)
	msg.Metadata.Set(wire.HeaderAggregateVersion, "x")
	msg.Metadata.Set(wire.HeaderOccurredAt, "yesterday")
	msg.Metadata.Set(wire.HeaderSpecVersion, "0.3")
	env, err := wire.FromMessage(msg)
	require.ErrorIs(t, err, wire.ErrMissingHeader)
	require.ErrorContains(t, err, `"ce_type"`)
	require.ErrorContains(t, err, `"ce_aggregatetype"`)
	require.ErrorContains(t, err, `"ce_subject"`)
	require.ErrorContains(t, err, `"ce_aggregateversion"`)
	require.ErrorContains(t, err, `"ce_time"`)
	require.ErrorContains(t, err, `spec version "0.3"`)
	require.NotContains(t, err.Error(), `"ce_id"`, "falls back to the message UUID")
	require.Equal(t, "id-1", env.ID)

	// A bad legacy header is named as such.
	legacy := message.NewMessage("id-2", nil)
	legacy.Metadata = legacyMetadata()
	legacy.Metadata["aggregate_version"] = "seven"
	_, err = wire.FromMessage(legacy)
	require.ErrorContains(t, err, `"aggregate_version"`)

	for _, bad := range []string{"0", "-1", "two", "1.5"} {
		_, err := wire.ParseEventVersion(message.Metadata{wire.HeaderEventVersion: bad})
		require.ErrorContains(t, err, `"ce_eventversion"`, bad)
	}
	_, err = wire.ParseEventVersion(message.Metadata{"event_version": "x"})
	require.ErrorContains(t, err, `"event_version"`)
	v, err := wire.ParseEventVersion(message.Metadata{})
	require.NoError(t, err)
	require.Equal(t, 1, v, "absent header means version 1")
}

func TestMetadataHeaders(t *testing.T) {
	t.Parallel()
	require.Nil(t, wire.MetadataHeaders(aggregate.Metadata{}))
	md := aggregate.Metadata{CorrelationID: "c", TraceState: "a=b", Values: map[string]string{"k": "v"}}
	h := wire.MetadataHeaders(md)
	require.Equal(t, map[string]string{"ce_correlationid": "c", "ce_tracestate": "a=b", "x-meta-k": "v"}, h)
	require.Equal(t, md, wire.ParseMetadata(h))
	require.True(t, wire.ParseMetadata(map[string]string{"ce_id": "x", "event_id": "y"}).IsZero())
	// Outbox rows written before CloudEvents stored the legacy names.
	require.Equal(t, aggregate.Metadata{CorrelationID: "c", CausationID: "k", TraceParent: "tp"},
		wire.ParseMetadata(map[string]string{"correlation_id": "c", "causation_id": "k", "traceparent": "tp"}))
}

// FuzzFromMessage feeds FromMessage arbitrary headers, CloudEvents and
// legacy: it must not panic, and what it accepts must survive ToMessage.
func FuzzFromMessage(f *testing.F) {
	f.Add("ce_id", "e", "ce_type", "n", "ce_aggregatetype", "t", "ce_subject", "a", "ce_time", "2026-01-01T00:00:00Z", "ce_aggregateversion", "3")
	f.Add("event_id", "e", "event_name", "n", "aggregate_type", "t", "aggregate_id", "a", "occurred_at", "2026-01-01T00:00:00+02:00", "ce_eventversion", "2")
	f.Add("_watermill_message_uuid", "e", "ce_type", "n", "aggregate_type", "t", "ce_subject", "a", "x-meta-", "", "ce_specversion", "1.0")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3, k4, v4, k5, v5, k6, v6 string) {
		md := message.Metadata{k1: v1, k2: v2, k3: v3, k4: v4, k5: v5, k6: v6}
		msg := message.NewMessage(wire.MessageUUID(md), nil)
		msg.Metadata = md
		_, _ = wire.ParseEventVersion(md)
		_ = wire.ContentType(md)
		env, err := wire.FromMessage(msg)
		if err != nil {
			return
		}
		again, err := wire.FromMessage(wire.ToMessage(env, "s", nil, 1))
		require.NoError(t, err)
		require.Equal(t, env.ID, again.ID)
		require.Equal(t, env.Version, again.Version)
		require.True(t, env.OccurredAt.Equal(again.OccurredAt))
		require.Equal(t, env.Metadata, again.Metadata)
	})
}
