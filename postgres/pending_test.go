package postgres_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
)

// The relay's fetch decodes rows in PostgreSQL's binary formats itself
// and scans rows in other formats (a connection on the simple protocol):
// both read the same events, as they were written.
func TestFetchReadsTheSameEventsInEitherFormat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bb := newOutboxBundle(t, nil)
	events := cartHistory(2, 2)
	odd := cartEvent("ü-Ω-1", 7)
	odd.OccurredAt = time.Date(1987, 6, 5, 4, 3, 2, 123456000, time.FixedZone("X", -7*3600)) // before PostgreSQL's epoch
	odd.Metadata = aggregate.Metadata{CorrelationID: "req-1", CausationID: "cmd-1",
		TraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", TraceState: "congo=t61rcWkgMzE",
		Values: map[string]string{"tenant": "acme", "ключ": "значение", "empty": ""}}
	late := cartEvent("a1", 3)
	late.OccurredAt = time.Date(2262, 1, 1, 0, 0, 0, 999000, time.UTC)
	events = append(events, odd, late)
	bb.write(t, events...)
	stmts, err := bb.ob.RelayStatements(ctx)
	require.NoError(t, err)

	read := func(mode pgx.QueryExecMode) (got []outbox.Pending, keys []int32, decoded bool) {
		cc := bb.pool.Config().ConnConfig.Copy()
		cc.DefaultQueryExecMode = mode
		conn, err := pgx.ConnectConfig(ctx, cc)
		require.NoError(t, err)
		defer func() { _ = conn.Close(ctx) }()
		rows, err := conn.Query(ctx, stmts["fetch"], 100)
		require.NoError(t, err)
		defer rows.Close()
		decoded = postgres.Decodable(rows.FieldDescriptions())
		got, keys, err = postgres.ReadPending(rows)
		require.NoError(t, err)
		return got, keys, decoded
	}
	decoded, decodedKeys, byDecoder := read(pgx.QueryExecModeCacheStatement)
	require.True(t, byDecoder, "a prepared statement's rows are decoded, not scanned")
	scanned, scannedKeys, byDecoder := read(pgx.QueryExecModeSimpleProtocol)
	require.False(t, byDecoder, "the simple protocol's text rows are scanned")

	require.Len(t, decoded, len(events))
	require.Equal(t, scannedKeys, decodedKeys)
	for i, want := range events {
		d, s := decoded[i], scanned[i]
		require.True(t, want.OccurredAt.Truncate(time.Microsecond).Equal(d.Event.OccurredAt), "event %d: occurred at %s, read %s", i, want.OccurredAt, d.Event.OccurredAt)
		require.True(t, s.Event.OccurredAt.Equal(d.Event.OccurredAt))
		require.Equal(t, time.Local, d.Event.OccurredAt.Location(), "as pgx reads a timestamptz")
		d.Event.OccurredAt, s.Event.OccurredAt = time.Time{}, time.Time{}
		require.Equal(t, s, d, "event %d", i)
		require.Equal(t, want.ID, d.Event.ID)
		require.Equal(t, want.Name, d.Event.Name)
		require.Equal(t, want.AggregateType, d.Event.AggregateType)
		require.Equal(t, want.AggregateID, d.Event.AggregateID)
		require.Equal(t, want.Version, d.Event.Version)
		require.Equal(t, want.Metadata, d.Event.Metadata)
		require.Positive(t, d.Seq)
		require.Zero(t, d.Attempts)
		require.JSONEq(t, `{"sku":"`+want.AggregateID+`","n":`+strconv.FormatInt(want.Version, 10)+`}`, string(d.Payload))
	}
}
