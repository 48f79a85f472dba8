// Package projectiontest is the shared test suite of [projection.Store]
// adapters: [Run] checks that a store gives projections their
// guarantees — each event applied once and in order, the read model and
// the checkpoint committed together, batches that fall back to one event
// at a time, rebuilds that end equal to a fresh build. The in-memory
// store runs it in package projection, the PostgreSQL store in package
// postgres. It also has a [Stream] in memory for tests.
package projectiontest

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/uuidv7"
	"github.com/dddkit/dddkit/projection"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/retry"
)

// Counted is the suite's event: the N-th increment of a counter. The
// suite registers it, with [Reset], under aggregate type "counter".
type Counted struct {
	N int `json:"n"`
}

// EventName implements aggregate.Event.
func (Counted) EventName() string { return "projectiontest.counted" }

// Reset is a second event type of the counter aggregate, which the
// suite's projections handle too (a projection of several types).
type Reset struct{}

// EventName implements aggregate.Event.
func (Reset) EventName() string { return "projectiontest.reset" }

// Ignored is an event type the suite's projections do not declare.
type Ignored struct{}

// EventName implements aggregate.Event.
func (Ignored) EventName() string { return "projectiontest.ignored" }

// AggregateType is the aggregate type of the suite's events.
const AggregateType = "counter"

// Registry returns a registry with the suite's events.
func Registry(t testing.TB) *eventbus.Registry {
	t.Helper()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test"})
	for _, err := range []error{
		eventbus.Register[Counted](reg, eventbus.AggregateType(AggregateType)),
		eventbus.Register[Reset](reg, eventbus.AggregateType(AggregateType)),
		eventbus.Register[Ignored](reg, eventbus.AggregateType(AggregateType)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// ReadModel is the read model the suite's projections write: a record
// per applied event, written in the transaction of the ctx it gets.
type ReadModel interface {
	// Add records that the event with ID eventID, version version of
	// counter aggregateID, was applied, in the transaction of ctx.
	Add(ctx context.Context, eventID, aggregateID string, version int64) error
	// Clear removes every record, in the transaction of ctx.
	Clear(ctx context.Context) error
	// Applied returns the committed records: how many times each event
	// ID was applied, and each aggregate's versions in the order they
	// were applied.
	Applied(ctx context.Context) (counts map[string]int, order map[string][]int64, err error)
}

// Harness is what a store adapter gives the suite.
type Harness struct {
	// Store is the store under test, fresh for the test.
	Store projection.Store
	// NewReadModel returns an empty read model called name that writes
	// in Store's transactions.
	NewReadModel func(t *testing.T, name string) ReadModel
}

// Run runs the suite; newHarness is called once per test.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *suite)
	}{
		{"EachEventOnceInOrder", testOnceInOrder},
		{"ConcurrentRunners", testConcurrentRunners},
		{"FailingWriteKeepsCheckpoint", testFailingWrite},
		{"BatchFallback", testBatchFallback},
		{"RebuildEqualsFreshBuild", testRebuild},
		{"RebuildWhileWriting", testRebuildWhileWriting},
		{"RunFollowsAndStatus", testRunFollows},
		{"RebuildNeedsResetHandler", testNoReset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.fn(t, &suite{h: h, reg: Registry(t), stream: NewStream()})
		})
	}
}

type suite struct {
	h      Harness
	reg    *eventbus.Registry
	stream *Stream
}

// poison makes the projection fail on some event IDs, after writing
// them (so that the failure must roll the write back).
type poison struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (p *poison) set(ids ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = make(map[string]bool)
	for _, id := range ids {
		p.ids[id] = true
	}
}

func (p *poison) has(id string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ids[id]
}

var errPoison = errors.New("projectiontest: poison event")

// projection returns a projection called name into rm.
func (s *suite) projection(t *testing.T, name string, rm ReadModel, bad *poison) *projection.Projection {
	t.Helper()
	p, err := projection.New(name, s.reg)
	if err != nil {
		t.Fatal(err)
	}
	apply := func(ctx context.Context, env aggregate.Envelope) error {
		if err := rm.Add(ctx, env.ID, env.AggregateID, env.Version); err != nil {
			return err
		}
		if bad.has(env.ID) {
			return errPoison
		}
		return nil
	}
	if err := projection.On(p, func(ctx context.Context, _ Counted, env aggregate.Envelope) error { return apply(ctx, env) }); err != nil {
		t.Fatal(err)
	}
	if err := projection.On(p, func(ctx context.Context, _ Reset, env aggregate.Envelope) error { return apply(ctx, env) }); err != nil {
		t.Fatal(err)
	}
	p.OnReset(rm.Clear)
	return p
}

func (s *suite) runner(t *testing.T, p *projection.Projection, batch int) *projection.Runner {
	t.Helper()
	r, err := projection.NewRunner(p, s.stream, s.h.Store, &projection.RunnerConfig{
		BatchSize: batch,
		Retry:     retry.Policy{MaxAttempts: 1},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Events returns n envelopes of counters aggregates (round robin), each
// aggregate's versions following its last; every 10th is a Reset and
// every 7th an Ignored event the projections skip.
func Events(n, aggregates int, versions map[string]int64) []aggregate.Envelope {
	out := make([]aggregate.Envelope, 0, n)
	for i := range n {
		agg := "c" + strconv.Itoa(i%aggregates)
		versions[agg]++
		var e aggregate.Event = Counted{N: int(versions[agg])}
		switch {
		case i%10 == 9:
			e = Reset{}
		case i%7 == 6:
			e = Ignored{}
		}
		out = append(out, aggregate.Envelope{
			ID: uuidv7.New().String(), Name: e.EventName(), AggregateType: AggregateType,
			AggregateID: agg, Version: versions[agg], OccurredAt: time.Now(), Payload: e,
		})
	}
	return out
}

// handled counts the envelopes a suite projection applies.
func handled(envs []aggregate.Envelope) int {
	n := 0
	for _, e := range envs {
		if e.Name != (Ignored{}).EventName() {
			n++
		}
	}
	return n
}

// checkOnce asserts that rm has each handled event of envs exactly once,
// and each aggregate's events in version order.
func checkOnce(t *testing.T, rm ReadModel, envs []aggregate.Envelope) {
	t.Helper()
	counts, order, err := rm.Applied(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, e := range envs {
		if e.Name == (Ignored{}).EventName() {
			if counts[e.ID] != 0 {
				t.Errorf("undeclared event %s applied", e.ID)
			}
			continue
		}
		want++
		if counts[e.ID] != 1 {
			t.Errorf("event %s (%s v%d) applied %d times, want 1", e.ID, e.AggregateID, e.Version, counts[e.ID])
		}
	}
	if len(counts) != want {
		t.Errorf("read model has %d events, want %d", len(counts), want)
	}
	for agg, vs := range order {
		if !slices.IsSorted(vs) {
			t.Errorf("aggregate %s applied out of order: %v", agg, vs)
		}
	}
}

// equal asserts that two read models hold the same events.
func equal(t *testing.T, a, b ReadModel) {
	t.Helper()
	ca, oa, err := a.Applied(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cb, ob, err := b.Applied(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(ca, cb) {
		t.Errorf("read models differ: %d and %d events", len(ca), len(cb))
	}
	if !maps.EqualFunc(oa, ob, slices.Equal) {
		t.Errorf("read models differ in order per aggregate")
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func testOnceInOrder(t *testing.T, s *suite) {
	ctx := ctxT(t)
	envs := Events(500, 7, map[string]int64{})
	s.stream.Append(envs[:250]...)
	s.stream.Append(envs[250:]...)
	rm := s.h.NewReadModel(t, "once")
	r := s.runner(t, s.projection(t, "once", rm, nil), 64)
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.CatchUp(ctx); err != nil { // nothing new: nothing applied twice
		t.Fatal(err)
	}
	checkOnce(t, rm, envs)
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied != int64(handled(envs)) || st.LagEvents != 0 || st.Lag != 0 || st.LastError != "" || st.Rebuilding {
		t.Errorf("status after catching up: %+v", st)
	}
	// The checkpoint is the last handled event's position (the last
	// events may be ignored ones).
	all, err := s.stream.Read(ctx, 0, r.Filter(), len(envs))
	if err != nil {
		t.Fatal(err)
	}
	if last := all[len(all)-1].Position; st.Position != last {
		t.Errorf("checkpoint at %d, want %d", st.Position, last)
	}
}

func testConcurrentRunners(t *testing.T, s *suite) {
	ctx := ctxT(t)
	envs := Events(600, 5, map[string]int64{})
	s.stream.Append(envs...)
	rm := s.h.NewReadModel(t, "concurrent")
	p := s.projection(t, "concurrent", rm, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		r := s.runner(t, p, 20)
		wg.Go(func() { errs <- r.CatchUp(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	checkOnce(t, rm, envs)
}

func testFailingWrite(t *testing.T, s *suite) {
	ctx := ctxT(t)
	envs := Events(40, 3, map[string]int64{})
	s.stream.Append(envs...)
	bad := &poison{}
	// The first event, alone in its batch: nothing commits.
	first := envs[0]
	bad.set(first.ID)
	rm := s.h.NewReadModel(t, "atomic")
	r := s.runner(t, s.projection(t, "atomic", rm, bad), 1)
	err := r.CatchUp(ctx)
	var perr *projection.Error
	if !errors.As(err, &perr) || perr.EventID != first.ID || !errors.Is(err, errPoison) {
		t.Fatalf("CatchUp = %v, want a *projection.Error at event %s wrapping the handler's error", err, first.ID)
	}
	counts, _, err := rm.Applied(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(counts) != 0 {
		t.Errorf("the failed write of %s is in the read model: %v", first.ID, counts)
	}
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Position != 0 || st.Applied != 0 {
		t.Errorf("checkpoint moved past a failed batch: %+v", st.Checkpoint)
	}
	if st.LastError == "" || st.LastErrorAt.IsZero() || st.LagEvents == 0 {
		t.Errorf("status does not show the failure: %+v", st)
	}
	bad.set()
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, rm, envs)
	if st, err := r.Status(ctx); err != nil || st.LastError != "" {
		t.Errorf("status after recovery: %+v, %v", st, err)
	}
}

func testBatchFallback(t *testing.T, s *suite) {
	ctx := ctxT(t)
	envs := Events(100, 4, map[string]int64{})
	s.stream.Append(envs...)
	// A poison event in the middle of the first batch of 50.
	var victim aggregate.Envelope
	for _, e := range envs[20:] {
		if e.Name == (Counted{}).EventName() {
			victim = e
			break
		}
	}
	bad := &poison{}
	bad.set(victim.ID)
	rm := s.h.NewReadModel(t, "fallback")
	r := s.runner(t, s.projection(t, "fallback", rm, bad), 50)
	err := r.CatchUp(ctx)
	var perr *projection.Error
	if !errors.As(err, &perr) || perr.EventID != victim.ID {
		t.Fatalf("CatchUp = %v, want a *projection.Error at event %s", err, victim.ID)
	}
	// Every event before the victim committed, the victim and the rest
	// did not.
	counts, _, err := rm.Applied(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for _, e := range envs {
		if e.ID == victim.ID {
			break
		}
		if e.Name != (Ignored{}).EventName() {
			before++
			if counts[e.ID] != 1 {
				t.Errorf("event %s before the poison one applied %d times", e.ID, counts[e.ID])
			}
		}
	}
	if len(counts) != before {
		t.Errorf("read model has %d events, want the %d before the poison one", len(counts), before)
	}
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Applied != int64(before) || st.Position >= perr.Position {
		t.Errorf("checkpoint %+v, want %d applied before position %d", st.Checkpoint, before, perr.Position)
	}
	bad.set()
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	checkOnce(t, rm, envs)
}

func testRebuild(t *testing.T, s *suite) {
	ctx := ctxT(t)
	versions := map[string]int64{}
	envs := Events(300, 6, versions)
	s.stream.Append(envs...)
	rm := s.h.NewReadModel(t, "rebuilt")
	r := s.runner(t, s.projection(t, "rebuilt", rm, nil), 32)
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	more := Events(100, 6, versions)
	s.stream.Append(more...)
	var last projection.Progress
	calls := 0
	if err := r.Rebuild(ctx, func(p projection.Progress) { last = p; calls++ }); err != nil {
		t.Fatal(err)
	}
	all := append(slices.Clone(envs), more...)
	checkOnce(t, rm, all)
	head, _ := s.stream.Head(ctx)
	if calls == 0 || last.Target != head || last.Applied != int64(handled(all)) {
		t.Errorf("progress: %d calls, last %+v; want target %d, %d applied", calls, last, head, handled(all))
	}
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Rebuilding || st.Applied != int64(handled(all)) {
		t.Errorf("status after rebuild: %+v", st)
	}
	fresh := s.h.NewReadModel(t, "fresh")
	if err := s.runner(t, s.projection(t, "fresh", fresh, nil), 32).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	equal(t, rm, fresh)
}

func testRebuildWhileWriting(t *testing.T, s *suite) {
	ctx := ctxT(t)
	versions := map[string]int64{}
	s.stream.Append(Events(400, 8, versions)...)
	rm := s.h.NewReadModel(t, "live")
	p := s.projection(t, "live", rm, nil)
	r := s.runner(t, p, 16)
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	// A runner keeps following while a writer appends and another
	// rebuilds.
	runCtx, stop := context.WithCancel(ctx)
	var wg, writer sync.WaitGroup
	runErr := make(chan error, 1)
	wg.Go(func() { runErr <- s.runner(t, p, 16).Run(runCtx) })
	writer.Go(func() {
		for range 20 {
			s.stream.Append(Events(20, 8, versions)...)
			time.Sleep(time.Millisecond)
		}
	})
	if err := r.Rebuild(ctx, nil); err != nil {
		t.Fatal(err)
	}
	writer.Wait()
	if err := r.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	stop()
	wg.Wait()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	all, err := s.stream.Read(ctx, 0, repository.StreamFilter{}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	envs := make([]aggregate.Envelope, len(all))
	for i, e := range all {
		envs[i] = e.Event
	}
	if len(envs) != 800 {
		t.Fatalf("stream has %d events, want 800", len(envs))
	}
	checkOnce(t, rm, envs)
	fresh := s.h.NewReadModel(t, "fresh")
	if err := s.runner(t, s.projection(t, "fresh", fresh, nil), 64).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	equal(t, rm, fresh)
}

func testRunFollows(t *testing.T, s *suite) {
	ctx := ctxT(t)
	versions := map[string]int64{}
	rm := s.h.NewReadModel(t, "follow")
	r := s.runner(t, s.projection(t, "follow", rm, nil), 10)
	st, err := r.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "follow" || st.Position != 0 || st.LagEvents != 0 {
		t.Errorf("status of a new projection on an empty stream: %+v", st)
	}
	envs := Events(30, 2, versions)
	s.stream.Append(envs...)
	if st, err = r.Status(ctx); err != nil {
		t.Fatal(err)
	}
	if st.LagEvents == 0 || st.Lag < 0 || st.Head == 0 {
		t.Errorf("status behind the stream: %+v", st)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()
	waitApplied := func(n int) {
		t.Helper()
		for {
			st, err := r.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Applied == int64(n) && st.LagEvents == 0 {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("projection did not apply %d events: %+v", n, st)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	waitApplied(handled(envs))
	more := Events(25, 2, versions)
	s.stream.Append(more...) // Run is waiting: it wakes and applies them
	waitApplied(handled(envs) + handled(more))
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v after its context ended, want nil", err)
	}
	checkOnce(t, rm, append(envs, more...))
}

func testNoReset(t *testing.T, s *suite) {
	p, err := projection.New("noreset", s.reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := projection.On(p, func(context.Context, Counted, aggregate.Envelope) error { return nil }); err != nil {
		t.Fatal(err)
	}
	r := s.runner(t, p, 10)
	if err := r.Rebuild(ctxT(t), nil); !errors.Is(err, projection.ErrNoResetHandler) {
		t.Errorf("Rebuild without OnReset = %v, want ErrNoResetHandler", err)
	}
}

// MemoryReadModel is a [ReadModel] in memory that stages its writes with
// [projection.OnCommit], for the [projection.MemoryStore].
type MemoryReadModel struct {
	mu     sync.Mutex
	counts map[string]int
	order  map[string][]int64
}

// NewMemoryReadModel returns an empty in-memory read model.
func NewMemoryReadModel() *MemoryReadModel {
	return &MemoryReadModel{counts: map[string]int{}, order: map[string][]int64{}}
}

// Add implements [ReadModel].
func (m *MemoryReadModel) Add(ctx context.Context, eventID, aggregateID string, version int64) error {
	projection.OnCommit(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.counts[eventID]++
		m.order[aggregateID] = append(m.order[aggregateID], version)
	})
	return nil
}

// Clear implements [ReadModel].
func (m *MemoryReadModel) Clear(ctx context.Context) error {
	projection.OnCommit(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		clear(m.counts)
		clear(m.order)
	})
	return nil
}

// Applied implements [ReadModel].
func (m *MemoryReadModel) Applied(context.Context) (map[string]int, map[string][]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	order := make(map[string][]int64, len(m.order))
	for k, v := range m.order {
		order[k] = slices.Clone(v)
	}
	return maps.Clone(m.counts), order, nil
}
