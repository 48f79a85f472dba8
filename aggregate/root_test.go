package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/uuidv7"
)

func newAccount(t *testing.T, opts ...aggregate.Option) *Account {
	t.Helper()
	a := &Account{}
	a.Init("acc-1", "account", a.apply, opts...)
	return a
}

func TestRecordAppliesAndStamps(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	md := aggregate.Metadata{CorrelationID: "corr", CausationID: "cause", Values: map[string]string{"tenant": "t1"}}
	a := newAccount(t, aggregate.WithClock(func() time.Time { return at }), aggregate.WithMetadata(md))

	require.NoError(t, a.Record(AccountOpened{Owner: "ada"}))
	require.NoError(t, a.Deposit(7))
	require.Equal(t, 7, a.balance)
	require.Equal(t, int64(2), a.Version())
	require.Equal(t, int64(0), a.CommittedVersion())
	require.True(t, a.IsNew())

	changes := a.Changes()
	require.Len(t, changes, 2)
	for i, e := range changes {
		require.Equal(t, int64(i+1), e.Version)
		require.Equal(t, "acc-1", e.AggregateID)
		require.Equal(t, "account", e.AggregateType)
		require.Equal(t, at, e.OccurredAt)
		require.Equal(t, md, e.Metadata)
		id, err := uuidv7.Parse(e.ID)
		require.NoError(t, err)
		require.Equal(t, 7, id.Version())
	}
	require.Equal(t, "bank.money_deposited", changes[1].Name)
	require.Equal(t, MoneyDeposited{Amount: 7}, changes[1].Payload)
	require.NotEqual(t, changes[0].ID, changes[1].ID)

	// Changing the returned slice or metadata does not change the aggregate.
	changes[0].Metadata.Values["tenant"] = "other"
	require.Equal(t, "t1", a.Changes()[0].Metadata.Values["tenant"])
}

func TestMarkCommitted(t *testing.T) {
	t.Parallel()
	a := newAccount(t)
	require.NoError(t, a.Record(AccountOpened{}))
	aggregate.MarkCommitted(a, a.Version())
	require.False(t, a.HasChanges())
	require.Equal(t, int64(1), a.CommittedVersion())
	require.False(t, a.IsNew())
	require.NoError(t, a.Deposit(1))
	require.Equal(t, int64(2), a.Changes()[0].Version)
	require.Equal(t, int64(1), a.CommittedVersion())
}

// A repository that wrote only some of the events (a unit of work whose
// last save came before more were recorded) marks those: the later ones
// stay uncommitted, for the next save.
func TestMarkCommittedUpToAVersion(t *testing.T) {
	t.Parallel()
	a := newAccount(t)
	require.NoError(t, a.Record(AccountOpened{}))
	require.NoError(t, a.Deposit(1))
	require.NoError(t, a.Deposit(2))
	require.NoError(t, a.Deposit(3))

	aggregate.MarkCommitted(a, 2)
	require.Equal(t, int64(2), a.CommittedVersion())
	require.Equal(t, int64(4), a.Version())
	var versions []int64
	for _, e := range a.Changes() {
		versions = append(versions, e.Version)
	}
	require.Equal(t, []int64{3, 4}, versions)

	aggregate.MarkCommitted(a, 1) // below the committed version: ignored
	require.Equal(t, int64(2), a.CommittedVersion())
	require.Len(t, a.Changes(), 2)

	aggregate.MarkCommitted(a, 9) // above the current version: the current one
	require.Equal(t, int64(4), a.CommittedVersion())
	require.False(t, a.HasChanges())
}

func TestRecordFailingApplyRecordsNothing(t *testing.T) {
	t.Parallel()
	a := newAccount(t)
	err := a.Record(unknownEvent{})
	require.ErrorContains(t, err, "unknown event")
	require.Equal(t, int64(0), a.Version())
	require.Empty(t, a.Changes())
	require.Error(t, a.Record(nil))
}

type unknownEvent struct{}

func (unknownEvent) EventName() string { return "test.unknown" }

func TestUninitializedRootErrors(t *testing.T) {
	t.Parallel()
	var a Account
	require.ErrorIs(t, a.Record(AccountOpened{}), aggregate.ErrNotInitialized)
	require.ErrorIs(t, aggregate.Replay(&a, nil), aggregate.ErrNotInitialized)
	require.ErrorIs(t, aggregate.Restore(&a, 3), aggregate.ErrNotInitialized)
}

func TestLifecycleOnNilAggregate(t *testing.T) {
	t.Parallel()
	var nilAccount *Account
	for _, a := range []aggregate.Aggregate{nil, nilAccount} {
		require.ErrorIs(t, aggregate.Restore(a, 1), aggregate.ErrNotInitialized)
		require.ErrorIs(t, aggregate.Replay(a, nil), aggregate.ErrNotInitialized)
		require.NotPanics(t, func() { aggregate.MarkCommitted(a, 1) })
	}
}

func TestRestore(t *testing.T) {
	t.Parallel()
	a := newAccount(t)
	require.NoError(t, a.Record(AccountOpened{}))
	require.NoError(t, aggregate.Restore(a, 41))
	require.Equal(t, int64(41), a.Version())
	require.Equal(t, int64(41), a.CommittedVersion())
	require.Empty(t, a.Changes())
	require.NoError(t, a.Deposit(2))
	require.Equal(t, int64(42), a.Changes()[0].Version)
	require.ErrorContains(t, aggregate.Restore(a, -1), "negative version")
	require.Equal(t, int64(42), a.Version(), "a failed Restore changes nothing")
	require.True(t, a.HasChanges())
}

// A loaded aggregate gets the options of whoever loads it: the events it
// records afterwards carry that clock and that metadata, not time.Now and
// whatever its mapping set.
func TestRestoreAndReplayApplyOptions(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	md := aggregate.Metadata{CorrelationID: "req-1"}
	opts := []aggregate.Option{aggregate.WithClock(func() time.Time { return at }), aggregate.WithMetadata(md), nil}

	restored := newAccount(t)
	require.NoError(t, aggregate.Restore(restored, 3, opts...))
	replayed := newAccount(t)
	require.NoError(t, aggregate.Replay(replayed, []aggregate.Envelope{{Payload: AccountOpened{}}}, opts...))

	for _, a := range []*Account{restored, replayed} {
		require.Equal(t, md, a.Metadata())
		require.NoError(t, a.Deposit(1))
		e := a.Changes()[0]
		require.Equal(t, at, e.OccurredAt)
		require.Equal(t, md, e.Metadata)
	}

	// Options are applied only when the load succeeds.
	failed := newAccount(t)
	require.Error(t, aggregate.Replay(failed, []aggregate.Envelope{{Payload: unknownEvent{}}}, opts...))
	require.True(t, failed.Metadata().IsZero())
}

func TestReplay(t *testing.T) {
	t.Parallel()
	a := newAccount(t)
	require.NoError(t, aggregate.Replay(a, []aggregate.Envelope{
		{Version: 1, Payload: AccountOpened{}},
		{Version: 2, Payload: MoneyDeposited{Amount: 3}},
		{Payload: MoneyDeposited{Amount: 4}}, // version unset: taken as next
	}))
	require.Equal(t, 7, a.balance)
	require.Equal(t, int64(3), a.Version())
	require.Equal(t, int64(3), a.CommittedVersion())
	require.False(t, a.HasChanges())
}

func TestLoadRejectsGapsAndUnknownEvents(t *testing.T) {
	t.Parallel()
	a := newAccount(t)
	err := aggregate.Replay(a, []aggregate.Envelope{
		{Version: 1, Payload: AccountOpened{}},
		{Version: 3, Payload: MoneyDeposited{Amount: 3}},
	})
	require.ErrorContains(t, err, "out of order")
	require.Equal(t, int64(1), a.Version(), "stops at the last event that applied")

	b := newAccount(t)
	require.ErrorContains(t, aggregate.Replay(b, []aggregate.Envelope{{Payload: unknownEvent{}}}), "unknown event")
	require.ErrorContains(t, aggregate.Replay(b, []aggregate.Envelope{{}}), "no payload")

	// History goes under uncommitted events, never on top of them.
	c := newAccount(t)
	require.NoError(t, c.Record(AccountOpened{}))
	require.ErrorContains(t, aggregate.Replay(c, []aggregate.Envelope{{Payload: MoneyDeposited{Amount: 1}}}), "uncommitted")
	require.Equal(t, 0, c.balance)
	require.Equal(t, int64(1), c.Version())
}

// The lifecycle operations are functions, not methods: nothing but the
// domain surface is promoted onto an aggregate that embeds Root, so
// application code cannot mark an aggregate committed or reset its version.
func TestRootMethodSetIsTheDomainSurface(t *testing.T) {
	t.Parallel()
	type bare struct{ aggregate.Root }
	typ := reflect.TypeFor[*bare]()
	var names []string
	for i := range typ.NumMethod() {
		names = append(names, typ.Method(i).Name)
	}
	for _, lifecycle := range []string{"MarkCommitted", "Restore", "Load", "Replay", "SetMetadata", "SetVersion"} {
		require.NotContains(t, names, lifecycle)
	}
	require.Equal(t, []string{
		"AggregateRoot", "Changes", "CommittedVersion", "HasChanges", "ID", "Init",
		"IsNew", "Metadata", "Record", "Type", "Version",
	}, names, "a new exported method on Root is part of every aggregate's API: add it here only if domain code needs it")
}

func TestAlreadyExistsError(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("save: %w", &aggregate.AlreadyExistsError{Type: "user", ID: "u1"})
	require.ErrorIs(t, err, aggregate.ErrAlreadyExists)
	require.NotErrorIs(t, err, aggregate.ErrConcurrencyConflict, "not a conflict: retrying cannot help")
	require.EqualError(t, err, "save: aggregate: already exists: user u1")
	var ae *aggregate.AlreadyExistsError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "u1", ae.ID)
	require.NotErrorIs(t, &aggregate.ConflictError{Type: "user", ID: "u1"}, aggregate.ErrAlreadyExists)
}

func TestConflictError(t *testing.T) {
	t.Parallel()
	var err error = &aggregate.ConflictError{Type: "user", ID: "u1", Expected: 3, Actual: 4}
	require.ErrorIs(t, err, aggregate.ErrConcurrencyConflict)
	require.EqualError(t, err, "aggregate: concurrency conflict on user u1: expected version 3, found 4")
	wrapped := errors.Join(errors.New("save"), err)
	var ce *aggregate.ConflictError
	require.ErrorAs(t, wrapped, &ce)
	require.Equal(t, int64(3), ce.Expected)
	require.Contains(t, (&aggregate.ConflictError{Type: "user", ID: "u1", Expected: 3, Actual: -1}).Error(), "found a different one")
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	require.True(t, aggregate.MetadataFromContext(ctx).IsZero())
	md := aggregate.Metadata{CorrelationID: "c", Values: map[string]string{"a": "1"}}
	require.Equal(t, md, aggregate.MetadataFromContext(aggregate.ContextWithMetadata(ctx, md)))

	merged := aggregate.Metadata{CausationID: "x", Values: map[string]string{"a": "mine"}}.
		Merge(aggregate.Metadata{CorrelationID: "c", CausationID: "y", TraceParent: "tp", Values: map[string]string{"a": "theirs", "b": "2"}})
	require.Equal(t, aggregate.Metadata{CorrelationID: "c", CausationID: "x", TraceParent: "tp", Values: map[string]string{"a": "mine", "b": "2"}}, merged)
	require.False(t, merged.IsZero())

	// The trace context travels as a pair: never one half from each side.
	theirs := aggregate.Metadata{TraceParent: "tp-theirs", TraceState: "ts-theirs"}
	require.Equal(t, theirs, aggregate.Metadata{}.Merge(theirs))
	require.Equal(t, aggregate.Metadata{TraceParent: "tp-mine"}, aggregate.Metadata{TraceParent: "tp-mine"}.Merge(theirs))
	require.False(t, aggregate.Metadata{TraceState: "s"}.IsZero())
}
