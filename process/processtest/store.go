// Package processtest holds the suites of package process: [Run], which
// every [process.Store] must pass (dddkit runs it against
// process.MemoryStore and the PostgreSQL store of package postgres), and
// [RunTimeout], the payment-timeout scenario of a process manager run
// end to end on a transport, an outbox and its relay, a store and a
// scheduler (in memory, and on PostgreSQL and Kafka).
package processtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/uuidv7"
	"github.com/dddkit/dddkit/process"
)

// Run runs the Store suite as parallel subtests of t. newStore returns
// an empty store of the subtest's own.
func Run(t *testing.T, newStore func(t *testing.T) process.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s process.Store)
	}{
		{"SavesAndLoads", testSaves},
		{"AppliesAnEventOnce", testOnce},
		{"FailureKeepsNothing", testFailure},
		{"NilStateSavesNothing", testNilState},
		{"SerializesAnInstance", testSerializes},
		{"KeepsProcessesApart", testApart},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if s == nil {
				t.Fatal("processtest: newStore returned nil")
			}
			tc.fn(t, s)
		})
	}
}

func env() aggregate.Envelope {
	return aggregate.Envelope{ID: uuidv7.New().String(), Name: "processtest.e", AggregateType: "t", AggregateID: "a", Version: 1}
}

func apply(t *testing.T, s process.Store, proc, key string, e aggregate.Envelope, fn func(inst *process.Instance) error) (bool, error) {
	t.Helper()
	return s.Apply(context.Background(), proc, key, e, func(_ context.Context, inst *process.Instance) error { return fn(inst) })
}

func load(t *testing.T, s process.Store, proc, key string) (process.Instance, bool) {
	t.Helper()
	inst, found, err := s.Load(context.Background(), proc, key)
	if err != nil {
		t.Fatalf("Load(%s, %s): %v", proc, key, err)
	}
	return inst, found
}

// testSaves: what fn leaves is saved, and fn sees it next time.
func testSaves(t *testing.T, s process.Store) {
	if _, found := load(t, s, "p", "k"); found {
		t.Fatal("an instance found in an empty store")
	}
	applied, err := apply(t, s, "p", "k", env(), func(inst *process.Instance) error {
		if inst.State != nil || inst.Ended {
			return fmt.Errorf("a new instance is %+v", inst)
		}
		inst.State = []byte(`{"n":1}`)
		return nil
	})
	if err != nil || !applied {
		t.Fatalf("Apply = %v, %v", applied, err)
	}
	_, err = apply(t, s, "p", "k", env(), func(inst *process.Instance) error {
		if string(inst.State) != `{"n": 1}` && string(inst.State) != `{"n":1}` {
			return fmt.Errorf("state %s, want {\"n\":1}", inst.State)
		}
		inst.State, inst.Ended = []byte(`{"n":2}`), true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	inst, found := load(t, s, "p", "k")
	if !found || !inst.Ended || !jsonIs(inst.State, 2) {
		t.Fatalf("loaded %+v (found %v), want {n:2} ended", inst, found)
	}
}

func jsonIs(b []byte, n int) bool {
	return string(b) == fmt.Sprintf(`{"n":%d}`, n) || string(b) == fmt.Sprintf(`{"n": %d}`, n)
}

// testOnce: an event applied before is not applied again.
func testOnce(t *testing.T, s process.Store) {
	e := env()
	runs := 0
	for i := range 3 {
		applied, err := apply(t, s, "p", "k", e, func(inst *process.Instance) error {
			runs++
			inst.State = []byte(`{"n":1}`)
			return nil
		})
		if err != nil || applied != (i == 0) {
			t.Fatalf("delivery %d: Apply = %v, %v", i+1, applied, err)
		}
	}
	if runs != 1 {
		t.Fatalf("fn ran %d times for one event", runs)
	}
}

// testFailure: a failing fn saves nothing and records nothing, so the
// event applies again.
func testFailure(t *testing.T, s process.Store) {
	e := env()
	boom := errors.New("boom")
	_, err := apply(t, s, "p", "k", e, func(inst *process.Instance) error {
		inst.State = []byte(`{"n":1}`)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Apply returned %v, want fn's error", err)
	}
	if _, found := load(t, s, "p", "k"); found {
		t.Fatal("the state of a failed Apply was saved")
	}
	applied, err := apply(t, s, "p", "k", e, func(inst *process.Instance) error {
		inst.State = []byte(`{"n":2}`)
		return nil
	})
	if err != nil || !applied {
		t.Fatalf("the event after a failure: Apply = %v, %v; want it applied", applied, err)
	}
}

// testNilState: fn leaving State nil saves no instance (an ignored
// event), but the event counts as applied.
func testNilState(t *testing.T, s process.Store) {
	e := env()
	if _, err := apply(t, s, "p", "k", e, func(*process.Instance) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, found := load(t, s, "p", "k"); found {
		t.Fatal("an instance was saved though fn left its state nil")
	}
	if applied, err := apply(t, s, "p", "k", e, func(*process.Instance) error { return nil }); err != nil || applied {
		t.Fatalf("Apply of the same event = %v, %v; want not applied", applied, err)
	}
}

// testSerializes: concurrent events of one instance apply one at a time
// (each sees the state the previous one left): no update is lost.
func testSerializes(t *testing.T, s process.Store) {
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			for {
				_, err := apply(t, s, "p", "counter", env(), func(inst *process.Instance) error {
					c := 0
					if inst.State != nil {
						if _, err := fmt.Sscanf(compact(inst.State), `{"n":%d}`, &c); err != nil {
							return err
						}
					}
					time.Sleep(time.Millisecond) // widen the window for a lost update
					inst.State = fmt.Appendf(nil, `{"n":%d}`, c+1)
					return nil
				})
				if errors.Is(err, aggregate.ErrConcurrencyConflict) {
					continue // a store may refuse a race; the router retries
				}
				errs <- err
				return
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	inst, _ := load(t, s, "p", "counter")
	if !jsonIs(inst.State, n) {
		t.Fatalf("after %d concurrent increments the state is %s", n, inst.State)
	}
}

func compact(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c != ' ' {
			out = append(out, c)
		}
	}
	return string(out)
}

// testApart: processes and keys are separate instances, and an event
// applied by one process is new to another.
func testApart(t *testing.T, s process.Store) {
	e := env()
	for _, pk := range [][2]string{{"p", "k1"}, {"p", "k2"}, {"q", "k1"}} {
		applied, err := apply(t, s, pk[0], pk[1], e, func(inst *process.Instance) error {
			inst.State = []byte(`{"n":1}`)
			return nil
		})
		if pk[0] == "p" && pk[1] == "k2" {
			// The same event for another key of the same process is a
			// duplicate: the record is per process and event.
			if err != nil || applied {
				t.Fatalf("%v: Apply = %v, %v; want a duplicate", pk, applied, err)
			}
			continue
		}
		if err != nil || !applied {
			t.Fatalf("%v: Apply = %v, %v", pk, applied, err)
		}
	}
	if _, found := load(t, s, "q", "k1"); !found {
		t.Fatal("instance q/k1 not found")
	}
	if _, found := load(t, s, "p", "k2"); found {
		t.Fatal("instance p/k2 saved by a duplicate")
	}
}
