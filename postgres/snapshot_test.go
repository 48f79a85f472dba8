package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// snapshotMapping is Counter's event mapping with snapshots every every
// events at schema version version, its state encoded as the state
// mapping does; restores counts the snapshots restored.
func snapshotMapping(every, version int, restores *atomic.Int64) repository.EventMapping[*repositorytest.Counter] {
	state := repositorytest.Mapping()
	m := repositorytest.EventMapping()
	m.Snapshot = &repository.SnapshotMapping[*repositorytest.Counter]{
		Every:   every,
		Version: version,
		Take:    state.Encode,
		Restore: func(id string, b []byte) (*repositorytest.Counter, error) {
			restores.Add(1)
			return state.Decode(id, b)
		},
	}
	return m
}

// writeHistory gives counter id a history of 1 + batches×perBatch events
// (one save per batch) and then tail single-event saves.
func writeHistory(t testing.TB, s repository.Repository[*repositorytest.Counter], id string, batches, perBatch, tail int) {
	t.Helper()
	ctx := context.Background()
	c, err := repositorytest.NewCounter(id, id)
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, c))
	for b := range batches {
		require.NoError(t, s.Update(ctx, id, func(c *repositorytest.Counter) error {
			for i := range perBatch {
				if err := c.Add((b*perBatch+i)%7 + 1); err != nil {
					return err
				}
			}
			return nil
		}))
	}
	for i := range tail {
		require.NoError(t, s.Update(ctx, id, func(c *repositorytest.Counter) error { return c.Add(i + 1) }))
	}
}

// Loads with and without a snapshot give the same aggregate, for 10,000
// events; a snapshot of another schema version, or one that cannot be
// decoded, is ignored.
func TestEventStoreSnapshots(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	var restores atomic.Int64
	snapped, err := postgres.NewEventStore(b.pool, b.outbox, snapshotMapping(1000, 1, &restores), nil)
	require.NoError(t, err)
	// 1 + 10 × 1,000 events, then 7 single ones: the newest snapshot is
	// the one the save to version 10,001 took.
	writeHistory(t, snapped, "c1", 10, 1000, 7)
	var snapVersion int64
	var schemaVersion int
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT version, schema_version FROM aggregate_snapshots WHERE id = 'c1'`).Scan(&snapVersion, &schemaVersion))
	require.Equal(t, int64(10_001), snapVersion)
	require.Equal(t, 1, schemaVersion)

	plain := newEventStore(t, b)
	want, err := plain.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, int64(10_008), want.Version())

	restores.Store(0)
	got, err := snapped.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, int64(1), restores.Load(), "the load started from the snapshot")
	requireSameCounter(t, want, got)
	// A loaded-from-snapshot aggregate saves like any other.
	require.NoError(t, got.Add(3))
	require.NoError(t, snapped.Save(ctx, got))
	want, err = plain.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, int64(10_009), want.Version())

	// A mapping at schema version 2 ignores the version-1 snapshot.
	var restores2 atomic.Int64
	v2, err := postgres.NewEventStore(b.pool, b.outbox, snapshotMapping(1000, 2, &restores2), nil)
	require.NoError(t, err)
	got, err = v2.Load(ctx, "c1")
	require.NoError(t, err)
	require.Zero(t, restores2.Load(), "no snapshot of schema version 2")
	requireSameCounter(t, want, got)

	// An undecodable snapshot is ignored: the load replays every event.
	_, err = b.pool.Exec(ctx, `UPDATE aggregate_snapshots SET state = 'not json' WHERE id = 'c1'`)
	require.NoError(t, err)
	restores.Store(0)
	got, err = snapped.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, int64(1), restores.Load(), "Restore was tried")
	requireSameCounter(t, want, got)
	// The next save that crosses a multiple of Every replaces it.
	require.NoError(t, snapped.Update(ctx, "c1", func(c *repositorytest.Counter) error {
		for range 1000 {
			if err := c.Add(1); err != nil {
				return err
			}
		}
		return nil
	}))
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT version FROM aggregate_snapshots WHERE id = 'c1' AND schema_version = 1`).Scan(&snapVersion))
	require.Equal(t, int64(11_009), snapVersion)
	restores.Store(0)
	got, err = snapped.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, int64(1), restores.Load())
	want, err = plain.Load(ctx, "c1")
	require.NoError(t, err)
	requireSameCounter(t, want, got)
}

func requireSameCounter(t *testing.T, want, got *repositorytest.Counter) {
	t.Helper()
	require.Equal(t, want.Version(), got.Version())
	require.Equal(t, want.CommittedVersion(), got.CommittedVersion())
	require.Equal(t, want.Value(), got.Value())
	require.Equal(t, want.Name(), got.Name())
	require.False(t, got.HasChanges())
}

// A snapshot is written in the transaction of the save that crosses a
// multiple of Every: when that transaction rolls back, so does the
// snapshot; a Take that fails fails the save.
func TestEventStoreSnapshotInTheSaveTransaction(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	var restores atomic.Int64
	store, err := postgres.NewEventStore(b.pool, b.outbox, snapshotMapping(2, 1, &restores), nil)
	require.NoError(t, err)
	c := mustCounter(t, "c1")
	require.NoError(t, store.Save(ctx, c)) // version 1: no snapshot
	require.Zero(t, b.count(t, `SELECT count(*) FROM aggregate_snapshots`))
	rolledBack := errors.New("roll back")
	err = b.uow.Do(ctx, func(ctx context.Context) error {
		if err := store.Update(ctx, "c1", func(c *repositorytest.Counter) error { return c.Add(1) }); err != nil {
			return err
		}
		require.Equal(t, 1, countIn(ctx, t, `SELECT count(*) FROM aggregate_snapshots`), "the snapshot is written in the unit of work")
		require.Zero(t, b.count(t, `SELECT count(*) FROM aggregate_snapshots`), "and not visible outside it")
		return rolledBack
	})
	require.ErrorIs(t, err, rolledBack)
	require.Zero(t, b.count(t, `SELECT count(*) FROM aggregate_snapshots`))

	m := snapshotMapping(2, 1, &restores)
	m.Snapshot.Take = func(*repositorytest.Counter) ([]byte, error) { return nil, errors.New("take failed") }
	failing, err := postgres.NewEventStore(b.pool, b.outbox, m, nil)
	require.NoError(t, err)
	err = failing.Update(ctx, "c1", func(c *repositorytest.Counter) error { return c.Add(1) })
	require.ErrorContains(t, err, "take failed")
	loaded, err := store.Load(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, int64(1), loaded.Version(), "nothing was saved")
}

// countIn counts in the transaction of the unit of work in ctx.
func countIn(ctx context.Context, t *testing.T, sql string) int {
	t.Helper()
	tx, ok := postgres.TxFromContext(ctx)
	require.True(t, ok)
	var n int
	require.NoError(t, tx.QueryRow(ctx, sql).Scan(&n))
	return n
}

// tally sums CounterAdded at schema version 2 (addedV2): an aggregate of
// a service whose registry upcasts the stored version-1 rows.
type tally struct {
	aggregate.Root
	sum int
}

// tallyState reads the value of Counter's snapshots.
type tallyState struct {
	Value int `json:"value"`
}

func newTally(id string) *tally {
	a := &tally{}
	a.Init(id, repositorytest.CounterType, func(e aggregate.Event) error {
		switch e := e.(type) {
		case repositorytest.CounterCreated:
		case addedV2:
			a.sum += e.Amount
		default:
			return fmt.Errorf("unexpected %T", e)
		}
		return nil
	})
	return a
}

// The events after a snapshot go through the registry's upcasters, like
// any load.
func TestEventStoreUpcastsAfterSnapshot(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := setupPG(t, repositorytest.Registry(t))
	var restores atomic.Int64
	v1, err := postgres.NewEventStore(b.pool, b.outbox, snapshotMapping(10, 1, &restores), nil)
	require.NoError(t, err)
	writeHistory(t, v1, "c1", 2, 10, 5) // snapshot at 21, then 5 events
	want, err := v1.Load(ctx, "c1")
	require.NoError(t, err)

	reg := eventbus.NewRegistry(nil)
	require.NoError(t, eventbus.Register[repositorytest.CounterCreated](reg))
	require.NoError(t, eventbus.Register[addedV2](reg, eventbus.Upcaster(1, func(p json.RawMessage) (json.RawMessage, error) {
		var old repositorytest.CounterAdded
		if err := json.Unmarshal(p, &old); err != nil {
			return nil, err
		}
		return json.Marshal(addedV2{Amount: old.N})
	})))
	ob, err := postgres.NewOutbox(b.pool, reg, nil)
	require.NoError(t, err)
	var fromSnapshot atomic.Bool
	tallies, err := postgres.NewEventStore(b.pool, ob, repository.EventMapping[*tally]{
		Type: repositorytest.CounterType,
		New:  newTally,
		Snapshot: repository.JSONSnapshot(10, 1,
			func(a *tally) tallyState { return tallyState{Value: a.sum} },
			func(id string, s tallyState) (*tally, error) {
				fromSnapshot.Store(true)
				a := newTally(id)
				a.sum = s.Value
				return a, nil
			}),
	}, nil)
	require.NoError(t, err)
	got, err := tallies.Load(ctx, "c1")
	require.NoError(t, err)
	require.True(t, fromSnapshot.Load())
	require.Equal(t, want.Value(), got.sum)
	require.Equal(t, want.Version(), got.Version())
}

func TestEventMappingValidatesSnapshot(t *testing.T) {
	t.Parallel()
	m := repositorytest.EventMapping()
	m.Snapshot = &repository.SnapshotMapping[*repositorytest.Counter]{}
	_, err := postgres.NewEventStore(nil, nil, m, nil)
	for _, want := range []string{"Snapshot.Every", "Snapshot.Version", "Snapshot.Take", "Snapshot.Restore"} {
		require.ErrorContains(t, err, want)
	}
}

// BenchmarkEventStoreLoad measures Load of an aggregate with 10,000
// events: replaying all of them, and from a snapshot taken at version
// 10,000 plus the 1 event after it.
//
//	go test -run '^$' -bench BenchmarkEventStoreLoad -benchmem -count 5 ./postgres/
func BenchmarkEventStoreLoad(b *testing.B) {
	ctx := context.Background()
	pg := setupPG(b, repositorytest.Registry(b))
	var restores atomic.Int64
	snapped, err := postgres.NewEventStore(pg.pool, pg.outbox, snapshotMapping(10_000, 1, &restores), nil)
	require.NoError(b, err)
	writeHistory(b, snapped, "c1", 10, 1000, 1) // 10,002 events; snapshot at 10,001
	plain, err := postgres.NewEventStore(pg.pool, pg.outbox, repositorytest.EventMapping(), nil)
	require.NoError(b, err)
	for _, bc := range []struct {
		name  string
		store *postgres.EventStore[*repositorytest.Counter]
	}{{"snapshot=no", plain}, {"snapshot=yes", snapped}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c, err := bc.store.Load(ctx, "c1")
				if err != nil || c.Version() != 10_002 {
					b.Fatal(err, c)
				}
			}
		})
	}
}
