package outbox_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/outbox"
)

func TestStoreWriteStoresEverything(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	e1 := envelope("c1", 1)
	e1.Metadata = aggregate.Metadata{CorrelationID: "corr", CausationID: "cmd-1", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Values: map[string]string{"tenant": "acme"}}
	e2 := envelope("c1", 2)
	b.write(t, e1, e2)

	recs, err := b.admin.List(ctx, outbox.StatusPending, 0, 0)
	require.NoError(t, err)
	require.Len(t, recs, 2)
	r := recs[0]
	require.Equal(t, e1.ID, r.Event.ID)
	require.Equal(t, "cart.item_added", r.Event.Name)
	require.Equal(t, "cart", r.Event.AggregateType)
	require.Equal(t, "c1", r.Event.AggregateID)
	require.Equal(t, int64(1), r.Event.Version)
	require.WithinDuration(t, e1.OccurredAt, r.Event.OccurredAt, time.Microsecond)
	require.Equal(t, e1.Metadata, r.Event.Metadata)
	require.JSONEq(t, `{"sku":"c1","n":1}`, string(r.RawPayload))
	require.Equal(t, outbox.StatusPending, r.Status)
	require.Zero(t, r.Attempts)
	require.Less(t, recs[0].Seq, recs[1].Seq)
	require.True(t, recs[1].Event.Metadata.IsZero())
}

func TestStoreWriteManyUsesOneStatement(t *testing.T) {
	t.Parallel()
	b := setup(t)
	events := history(7, 20) // 140 events: beyond the VALUES form
	events[3].Metadata = aggregate.Metadata{CorrelationID: "c"}
	events[5].OccurredAt = time.Time{}
	b.write(t, events...)
	require.Equal(t, 140, b.count(t, `status = 'pending'`))

	recs, err := b.admin.List(context.Background(), outbox.StatusPending, 0, 0)
	require.NoError(t, err)
	for i, r := range recs {
		require.Equal(t, events[i].ID, r.Event.ID, "sequence order is write order")
		var p itemAdded
		require.NoError(t, json.Unmarshal(r.RawPayload, &p))
		require.Equal(t, events[i].Payload, p)
	}
	require.Equal(t, "c", recs[3].Event.Metadata.CorrelationID)
	require.WithinDuration(t, time.Now(), recs[5].Event.OccurredAt, time.Minute, "zero OccurredAt stored as now")
}

type unencodable struct{ C chan int }

func (unencodable) EventName() string { return "bad" }

func TestStoreWriteRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	store := b.store

	bad := envelope("c1", 1)
	bad.ID, bad.AggregateID = "", ""
	err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return store.Write(ctx, tx, envelope("c0", 1), bad) })
	require.ErrorIs(t, err, outbox.ErrInvalidEvent)
	require.ErrorContains(t, err, "missing ID, AggregateID")

	enc := envelope("c1", 1)
	enc.Payload = unencodable{C: make(chan int)}
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return store.Write(ctx, tx, enc) })
	require.ErrorIs(t, err, outbox.ErrInvalidEvent)

	dup := envelope("c1", 1)
	b.write(t, dup)
	err = pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return store.Write(ctx, tx, envelope("c2", 1), dup) })
	require.ErrorContains(t, err, "event_id_key")

	require.Equal(t, 1, b.count(t, `true`), "only the committed event is stored")
	require.NoError(t, pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error { return store.Write(ctx, tx) }))
	require.Error(t, store.Write(ctx, nil, envelope("c3", 1)))
}
