package postgres

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/outbox"
)

// binaryRow encodes a fetched row as PostgreSQL sends it, the text
// columns and the headers as given.
func binaryRow(seq int64, id, typ, aggID string, version int64, name string, schemaVersion int32, payload, headers []byte, occurredMicros int64, attempts, shardKey int32) [][]byte {
	i8 := func(n int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)) }
	i4 := func(n int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }
	return [][]byte{i8(seq), []byte(id), []byte(typ), []byte(aggID), i8(version), []byte(name), i4(schemaVersion),
		payload, headers, i8(occurredMicros), i4(attempts), i4(shardKey)}
}

func TestDecodePendingReadsBinaryRows(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)
	micros := at.Sub(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds()
	for name, tc := range map[string]struct {
		headers     []byte
		jsonbBinary bool
		want        []byte
	}{
		"no headers":            {nil, true, nil},
		"headers in text":       {[]byte(`{"correlation_id":"c"}`), false, []byte(`{"correlation_id":"c"}`)},
		"headers in jsonb's v1": {[]byte("\x01{\"correlation_id\":\"c\"}"), true, []byte(`{"correlation_id":"c"}`)},
	} {
		t.Run(name, func(t *testing.T) {
			var p outbox.Pending
			v := binaryRow(42, "e-1", "cart", "ü-1", 7, "cart.item_added", 2, []byte(`{"sku":"x"}`), tc.headers, micros, 3, 1234567)
			headers, shardKey, err := decodePending(v, &p, tc.jsonbBinary)
			require.NoError(t, err)
			require.Equal(t, tc.want, headers)
			require.Equal(t, int32(1234567), shardKey)
			require.Equal(t, int64(42), p.Seq)
			require.Equal(t, "e-1", p.Event.ID)
			require.Equal(t, "cart", p.Event.AggregateType)
			require.Equal(t, "ü-1", p.Event.AggregateID)
			require.Equal(t, "cart.item_added", p.Event.Name)
			require.Equal(t, int64(7), p.Event.Version)
			require.Equal(t, 2, p.SchemaVersion)
			require.Equal(t, 3, p.Attempts)
			require.Equal(t, `{"sku":"x"}`, string(p.Payload))
			require.True(t, at.Equal(p.Event.OccurredAt), "%s", p.Event.OccurredAt)
			v[7][0] = '[' // the row's buffer is reused for the next row
			require.Equal(t, `{"sku":"x"}`, string(p.Payload), "the payload is a copy")
		})
	}
}

func TestDecodePendingRejectsMalformedRows(t *testing.T) {
	t.Parallel()
	good := func() [][]byte {
		return binaryRow(1, "e", "t", "a", 1, "n", 1, []byte(`{}`), nil, 0, 0, 0)
	}
	for name, spoil := range map[string]func(v [][]byte) [][]byte{
		"a column short":        func(v [][]byte) [][]byte { return v[:11] },
		"seq of 4 bytes":        func(v [][]byte) [][]byte { v[0] = v[0][:4]; return v },
		"NULL version":          func(v [][]byte) [][]byte { v[4] = nil; return v },
		"NULL event ID":         func(v [][]byte) [][]byte { v[1] = nil; return v },
		"NULL payload":          func(v [][]byte) [][]byte { v[7] = nil; return v },
		"attempts of 8 bytes":   func(v [][]byte) [][]byte { v[10] = append(v[10], 0, 0, 0, 0); return v },
		"jsonb of version 2":    func(v [][]byte) [][]byte { v[8] = []byte("\x02{}"); return v },
		"empty jsonb":           func(v [][]byte) [][]byte { v[8] = []byte{}; return v },
		"occurred at infinity":  func(v [][]byte) [][]byte { v[9] = binary.BigEndian.AppendUint64(nil, math.MaxInt64); return v },
		"occurred at -infinity": func(v [][]byte) [][]byte { v[9] = binary.BigEndian.AppendUint64(nil, 1<<63); return v },
	} {
		t.Run(name, func(t *testing.T) {
			var p outbox.Pending
			_, _, err := decodePending(spoil(good()), &p, true)
			require.ErrorIs(t, err, errBadRow)
		})
	}
}

// FuzzDecodePending feeds rows of any shape: decodePending returns an
// error or a row, and never panics.
func FuzzDecodePending(f *testing.F) {
	f.Add([]byte{8, 3, 4, 5, 8, 7, 4, 2, 0, 8, 4, 4}, []byte("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz"), true)
	f.Add([]byte{8, 0, 0, 0, 8, 0, 4, 0, 255, 8, 4, 4}, []byte("\x01\x02\x03"), false)
	f.Fuzz(func(t *testing.T, sizes, data []byte, jsonbBinary bool) {
		v := make([][]byte, 0, len(sizes))
		for _, n := range sizes {
			if n == 255 {
				v = append(v, nil) // NULL
				continue
			}
			k := min(int(n%64), len(data))
			v = append(v, data[:k:k])
			data = data[k:]
		}
		var p outbox.Pending
		headers, _, err := decodePending(v, &p, jsonbBinary)
		if err != nil {
			require.ErrorIs(t, err, errBadRow)
			return
		}
		require.Len(t, v, len(pendingColumns))
		require.Equal(t, string(v[1])+string(v[2])+string(v[3])+string(v[5]), p.Event.ID+p.Event.AggregateType+p.Event.AggregateID+p.Event.Name)
		require.Equal(t, v[7], p.Payload)
		if v[8] == nil {
			require.Nil(t, headers)
		}
	})
}
