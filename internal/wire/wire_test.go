package wire_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
)

func TestToMessageRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 4, 5, 6, 7, 891011, time.FixedZone("x", 3600))
	env := aggregate.Envelope{
		ID: "0190-e1", Name: "auth.user_registered", AggregateType: "user", AggregateID: "u-1", Version: 7,
		OccurredAt: at,
		Metadata: aggregate.Metadata{CorrelationID: "corr", CausationID: "cause", TraceParent: "00-abc-def-01",
			Values: map[string]string{"tenant": "t1", "ua": "curl"}},
	}
	msg := wire.ToMessage(env, []byte(`{"Email":"a@b.c"}`))
	require.Equal(t, "0190-e1", msg.UUID)
	require.JSONEq(t, `{"Email":"a@b.c"}`, string(msg.Payload))
	require.Equal(t, message.Metadata{
		"event_id": "0190-e1", "event_name": "auth.user_registered", "aggregate_type": "user", "aggregate_id": "u-1",
		"aggregate_version": "7", "occurred_at": "2026-03-04T04:06:07.000891011Z", "content_type": "application/json",
		"correlation_id": "corr", "causation_id": "cause", "traceparent": "00-abc-def-01",
		"x-meta-tenant": "t1", "x-meta-ua": "curl",
	}, msg.Metadata)
	require.Equal(t, middleware.CorrelationIDMetadataKey, wire.HeaderCorrelationID)

	back, err := wire.FromMessage(msg)
	require.NoError(t, err)
	env.OccurredAt = env.OccurredAt.UTC()
	require.Equal(t, env, back)
}

func TestFromMessageErrors(t *testing.T) {
	t.Parallel()
	msg := message.NewMessage("id-1", nil)
	msg.Metadata.Set(wire.HeaderAggregateVersion, "x")
	msg.Metadata.Set(wire.HeaderOccurredAt, "yesterday")
	env, err := wire.FromMessage(msg)
	require.ErrorIs(t, err, wire.ErrMissingHeader)
	require.ErrorContains(t, err, `"event_name"`)
	require.ErrorContains(t, err, `"aggregate_type"`)
	require.ErrorContains(t, err, `"aggregate_id"`)
	require.ErrorContains(t, err, `"aggregate_version"`)
	require.ErrorContains(t, err, `"occurred_at"`)
	require.NotContains(t, err.Error(), `"event_id"`, "falls back to the message UUID")
	require.Equal(t, "id-1", env.ID)
}

func TestMetadataHeaders(t *testing.T) {
	t.Parallel()
	require.Nil(t, wire.MetadataHeaders(aggregate.Metadata{}))
	md := aggregate.Metadata{CorrelationID: "c", Values: map[string]string{"k": "v"}}
	h := wire.MetadataHeaders(md)
	require.Equal(t, map[string]string{"correlation_id": "c", "x-meta-k": "v"}, h)
	require.Equal(t, md, wire.ParseMetadata(h))
	require.True(t, wire.ParseMetadata(map[string]string{"event_id": "x"}).IsZero())
}

func FuzzFromMessage(f *testing.F) {
	f.Add("e", "n", "t", "a", "3", "2026-01-01T00:00:00Z", "x-meta-k")
	f.Fuzz(func(t *testing.T, id, name, typ, agg, version, at, metaKey string) {
		msg := message.NewMessage(id, nil)
		for k, v := range map[string]string{wire.HeaderEventName: name, wire.HeaderAggregateType: typ,
			wire.HeaderAggregateID: agg, wire.HeaderAggregateVersion: version, wire.HeaderOccurredAt: at, metaKey: "v"} {
			msg.Metadata.Set(k, v)
		}
		env, err := wire.FromMessage(msg)
		if err != nil {
			return
		}
		again, err := wire.FromMessage(wire.ToMessage(env, nil))
		require.NoError(t, err)
		require.Equal(t, env.ID, again.ID)
		require.Equal(t, env.Version, again.Version)
		require.True(t, env.OccurredAt.Equal(again.OccurredAt))
	})
}

func TestEventVersionHeader(t *testing.T) {
	t.Parallel()
	md := message.Metadata{}
	v, err := wire.ParseEventVersion(md)
	require.NoError(t, err)
	require.Equal(t, 1, v, "absent header means version 1")
	wire.SetEventVersion(md, 3)
	v, err = wire.ParseEventVersion(md)
	require.NoError(t, err)
	require.Equal(t, 3, v)
	md[wire.HeaderEventVersion] = "0"
	_, err = wire.ParseEventVersion(md)
	require.Error(t, err)
}
