package eventbustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

// RunDeadLetters runs the suite of an [eventbus.DeadLetters] store as
// parallel subtests of t: dead letters and the events parked behind them
// kept in order, per handler and key, listed, released, removed and
// failed again. newStore is called once per subtest; the store may be
// shared between subtests (each uses handler names of its own).
func RunDeadLetters(t *testing.T, newStore func(t *testing.T) eventbus.DeadLetters) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s eventbus.DeadLetters, handler string)
	}{
		{"ParksBehindDeadLetterInOrder", testStorePark},
		{"KeysAndHandlersAreIndependent", testStoreIndependent},
		{"ListsAndGets", testStoreList},
		{"ReleaseOnceOneWay", testStoreRelease},
		{"RemoveReleasesKeyWhenEmpty", testStoreRemove},
		{"FailMakesHeldEventTheDeadLetter", testStoreFail},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if s == nil {
				t.Fatal("eventbustest: newStore returned nil")
			}
			tc.fn(t, s, fmt.Sprintf("h-%s-%d", tc.name, time.Now().UnixNano()))
		})
	}
}

func parked(id string) eventbus.ParkedEvent {
	return eventbus.ParkedEvent{
		ID:       id,
		Name:     "test.created",
		Metadata: map[string]string{eventbus.HeaderEventID: id, "x-meta-k": "v " + id},
		Payload:  []byte(`{"Seq":"` + id + `"}`),
	}
}

func deadLetter(handler, key, id string) eventbus.DeadLetter {
	return eventbus.DeadLetter{Handler: handler, Key: key, Topic: "t." + handler, Event: parked(id), Reason: "cannot handle " + id}
}

func heldIDs(evs []eventbus.ParkedEvent) []string {
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, ev.ID)
	}
	return out
}

func testStorePark(t *testing.T, s eventbus.DeadLetters, h string) {
	ctx := context.Background()
	ok, err := s.Park(ctx, h, "A", parked("a1"))
	must(t, err)
	check(t, !ok, "parked behind no dead letter")
	must(t, s.Add(ctx, deadLetter(h, "A", "a4")))
	for _, id := range []string{"a5", "a6", "a5", "a7"} { // a5 twice: stored once
		ok, err := s.Park(ctx, h, "A", parked(id))
		must(t, err)
		check(t, ok, "%s not parked", id)
	}
	// Adding the key's dead letter again parks the event behind the first.
	must(t, s.Add(ctx, deadLetter(h, "A", "a8")))
	must(t, s.Add(ctx, deadLetter(h, "A", "a4")))
	dl, evs, err := s.Get(ctx, h, "A")
	must(t, err)
	check(t, dl.Event.ID == "a4" && dl.Reason == "cannot handle a4" && dl.Topic == "t."+h, "dead letter %+v", dl)
	check(t, fmt.Sprint(heldIDs(evs)) == "[a5 a6 a7 a8]", "parked %v, want [a5 a6 a7 a8]", heldIDs(evs))
	check(t, dl.Parked == 4, "Parked = %d, want 4", dl.Parked)
	check(t, !dl.DeadAt.IsZero() && dl.Release == eventbus.ReleaseNone, "DeadAt %v, Release %q", dl.DeadAt, dl.Release)
	// What was stored comes back byte for byte.
	want := parked("a6")
	got := evs[1]
	check(t, got.Name == want.Name && string(got.Payload) == string(want.Payload) &&
		fmt.Sprint(got.Metadata) == fmt.Sprint(want.Metadata) && !got.At.IsZero(), "parked event %+v, want %+v", got, want)
	check(t, string(dl.Event.Payload) == string(parked("a4").Payload), "dead event payload %q", dl.Event.Payload)
}

func testStoreIndependent(t *testing.T, s eventbus.DeadLetters, h string) {
	ctx := context.Background()
	must(t, s.Add(ctx, deadLetter(h, "A", "a1")))
	ok, err := s.Park(ctx, h, "B", parked("b1"))
	must(t, err)
	check(t, !ok, "key B parked behind A's dead letter")
	ok, err = s.Park(ctx, h+"-other", "A", parked("a2"))
	must(t, err)
	check(t, !ok, "another handler's A parked behind %s's dead letter", h)
	keys, err := s.Parked(ctx, h, []string{"B", "A", "C"})
	must(t, err)
	check(t, fmt.Sprint(keys) == "[A]", "Parked = %v, want [A]", keys)
	keys, err = s.Parked(ctx, h+"-other", []string{"A"})
	must(t, err)
	check(t, len(keys) == 0, "other handler Parked = %v", keys)
}

func testStoreList(t *testing.T, s eventbus.DeadLetters, h string) {
	ctx := context.Background()
	must(t, s.Add(ctx, deadLetter(h, "A", "a1")))
	_, err := s.Park(ctx, h, "A", parked("a2"))
	must(t, err)
	must(t, s.Add(ctx, deadLetter(h, "B", "b1")))
	must(t, s.Add(ctx, deadLetter(h+"-x", "A", "xa1")))
	list, err := s.List(ctx, h)
	must(t, err)
	check(t, len(list) == 2, "List(%s) has %d, want 2", h, len(list))
	if len(list) == 2 {
		check(t, list[0].Key == "A" && list[0].Parked == 1 && list[0].Event.ID == "a1" && list[0].Reason == "cannot handle a1",
			"first %+v", list[0])
		check(t, list[1].Key == "B" && list[1].Parked == 0, "second %+v", list[1])
	}
	all, err := s.List(ctx, "")
	must(t, err)
	var mine int
	for _, dl := range all {
		if strings.HasPrefix(dl.Handler, h) {
			mine++
		}
	}
	check(t, mine == 3, "List(\"\") has %d of this test's dead letters, want 3", mine)
	_, _, err = s.Get(ctx, h, "C")
	check(t, errors.Is(err, eventbus.ErrNoDeadLetter), "Get of no dead letter: %v", err)
}

func testStoreRelease(t *testing.T, s eventbus.DeadLetters, h string) {
	ctx := context.Background()
	_, err := s.Release(ctx, h, "A", eventbus.ReleaseReplay)
	check(t, errors.Is(err, eventbus.ErrNoDeadLetter), "release of no dead letter: %v", err)
	must(t, s.Add(ctx, deadLetter(h, "A", "a1")))
	dl, err := s.Release(ctx, h, "A", eventbus.ReleaseReplay)
	must(t, err)
	check(t, dl.Release == eventbus.ReleaseReplay && !dl.ReleasedAt.IsZero() && dl.Event.ID == "a1" && dl.Topic == "t."+h,
		"released %+v", dl)
	_, err = s.Release(ctx, h, "A", eventbus.ReleaseReplay)
	check(t, err == nil, "replay asked twice: %v", err)
	_, err = s.Release(ctx, h, "A", eventbus.ReleaseSkip)
	check(t, errors.Is(err, eventbus.ErrReleasing), "skip after replay: %v, want ErrReleasing", err)
	got, _, err := s.Get(ctx, h, "A")
	must(t, err)
	check(t, got.Release == eventbus.ReleaseReplay, "Get after release: %q", got.Release)
}

func testStoreRemove(t *testing.T, s eventbus.DeadLetters, h string) {
	ctx := context.Background()
	_, ok, err := s.Next(ctx, h, "A")
	must(t, err)
	check(t, !ok, "Next without a dead letter")
	must(t, s.Add(ctx, deadLetter(h, "A", "a1")))
	for _, id := range []string{"a2", "a3"} {
		_, err := s.Park(ctx, h, "A", parked(id))
		must(t, err)
	}
	var order []string
	for {
		ev, ok, err := s.Next(ctx, h, "A")
		must(t, err)
		if !ok {
			break
		}
		order = append(order, ev.ID)
		if len(order) > 3 {
			t.Fatalf("Next keeps returning events: %v", order)
		}
		keys, err := s.Parked(ctx, h, []string{"A"})
		must(t, err)
		check(t, len(keys) == 1, "A not parked while %s is held", ev.ID)
		must(t, s.Remove(ctx, h, "A", ev.ID))
	}
	check(t, fmt.Sprint(order) == "[a1 a2 a3]", "Next order %v, want [a1 a2 a3]", order)
	_, _, err = s.Get(ctx, h, "A")
	check(t, errors.Is(err, eventbus.ErrNoDeadLetter), "dead letter left after its last event was removed: %v", err)
	ok, err = s.Park(ctx, h, "A", parked("a4"))
	must(t, err)
	check(t, !ok, "parked after the key was released")
}

func testStoreFail(t *testing.T, s eventbus.DeadLetters, h string) {
	ctx := context.Background()
	must(t, s.Add(ctx, deadLetter(h, "A", "a1")))
	for _, id := range []string{"a2", "a3", "a4"} {
		_, err := s.Park(ctx, h, "A", parked(id))
		must(t, err)
	}
	_, err := s.Release(ctx, h, "A", eventbus.ReleaseReplay)
	must(t, err)
	must(t, s.Remove(ctx, h, "A", "a1"))
	must(t, s.Fail(ctx, h, "A", "a2", "a2 failed too"))
	dl, evs, err := s.Get(ctx, h, "A")
	must(t, err)
	check(t, dl.Event.ID == "a2" && dl.Reason == "a2 failed too" && dl.Release == eventbus.ReleaseNone && dl.ReleasedAt.IsZero(),
		"after Fail: %+v", dl)
	check(t, fmt.Sprint(heldIDs(evs)) == "[a3 a4]" && dl.Parked == 2, "parked %v (Parked %d), want [a3 a4]", heldIDs(evs), dl.Parked)
	ev, ok, err := s.Next(ctx, h, "A")
	must(t, err)
	check(t, ok && ev.ID == "a2", "Next = %q, want a2", ev.ID)
	// A skip is possible now.
	_, err = s.Release(ctx, h, "A", eventbus.ReleaseSkip)
	must(t, err)
}

// ParkingHarness is what the parking suite needs: a transport, a
// dead-letter store and an inbox.
type ParkingHarness struct {
	// Transport carries the events; the suite does not close it.
	Transport eventbus.Transport

	// Topic returns a new topic of the test's own, as [Harness.Topic].
	Topic func(t testing.TB) string

	// DeadLetters is the store the routers record dead letters in.
	DeadLetters eventbus.DeadLetters

	// Inbox is the inbox of the [eventbus.HandleOnce] cases; nil means
	// an [eventbus.MemoryInbox].
	Inbox eventbus.Inbox

	// Timeout bounds each wait. 0 means 60s.
	Timeout time.Duration
}

// RunParking runs the suite of dead letters that keep order, through a
// [eventbus.Router], as parallel subtests of t: an event of key A that
// fails for good parks A's later events while the other keys go on;
// [eventbus.ReplayDeadLetter] after a fix applies A's events in order,
// [eventbus.SkipDeadLetter] the parked ones without the dead one; with
// [eventbus.Handle] and with [eventbus.HandleOnce]. newHarness is called
// once per subtest.
func RunParking(t *testing.T, newHarness func(t *testing.T) ParkingHarness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, p *parkingEnv)
	}{
		{"ReplayAppliesDeadThenParkedInOrder", func(t *testing.T, p *parkingEnv) { testParkingRelease(t, p, false, true) }},
		{"SkipAppliesParkedInOrder", func(t *testing.T, p *parkingEnv) { testParkingRelease(t, p, false, false) }},
		{"ReplayWithInbox", func(t *testing.T, p *parkingEnv) { testParkingRelease(t, p, true, true) }},
		{"SkipWithInbox", func(t *testing.T, p *parkingEnv) { testParkingRelease(t, p, true, false) }},
		{"ReplayFailingAgainStaysParked", testParkingFailsAgain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if h.Transport == nil || h.Topic == nil || h.DeadLetters == nil {
				t.Fatal("eventbustest: ParkingHarness needs Transport, Topic and DeadLetters")
			}
			if h.Timeout == 0 {
				h.Timeout = 60 * time.Second
			}
			if h.Inbox == nil {
				h.Inbox = eventbus.NewMemoryInbox()
			}
			s := &suite{h: Harness{Transport: h.Transport, Topic: h.Topic, Timeout: h.Timeout}}
			tc.fn(t, &parkingEnv{env: s.setup(t), h: h})
		})
	}
}

type parkingEnv struct {
	*env
	h ParkingHarness
}

// byKey records the sequence numbers a handler applied, per key.
type byKey struct {
	mu   sync.Mutex
	seqs map[string][]int
}

func (b *byKey) add(key string, seq int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seqs == nil {
		b.seqs = map[string][]int{}
	}
	b.seqs[key] = append(b.seqs[key], seq)
}

// a returns what was applied of key A, the key the suite poisons, in
// the order it took effect. A batching consumer (HandleOnce on Kafka) may
// run a handler for an event in a batch that then rolls back and run it
// again in the batch that commits; the recorder is no transaction, so a
// later run of the same event supersedes the earlier one (the inbox
// suites check that effects happen once).
func (b *byKey) a() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := b.seqs["A"]
	var out []int
	for i, seq := range all {
		if !slices.Contains(all[i+1:], seq) {
			out = append(out, seq)
		}
	}
	return out
}

func (b *byKey) keys() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.seqs)
}

// seqs returns 1..to without except.
func seqs(to int, except ...int) []int {
	var out []int
	for i := 1; i <= to; i++ {
		if !slices.Contains(except, i) {
			out = append(out, i)
		}
	}
	return out
}

// poisoned starts a router with handler name (through HandleOnce when
// once) that fails for good on key A's event 4 while broken is set, and
// an observer handler of the same topic; it publishes A's events 1..10
// interleaved with events of B..Z and waits until A is parked behind its
// event 4 with 5..10 and every other key is handled.
func (p *parkingEnv) poisoned(t *testing.T, name string, once bool, broken *atomic.Bool) (applied, observed *byKey, a4 aggregate.Envelope) {
	t.Helper()
	applied, observed = &byKey{}, &byKey{}
	r := p.router(func(c *eventbus.RouterConfig) { c.DeadLetters = p.h.DeadLetters })
	fn := func(_ context.Context, ev created, env aggregate.Envelope) error {
		if env.AggregateID == "A" && ev.Seq == 4 && broken.Load() {
			return eventbus.Permanent(errors.New("poison A4"))
		}
		applied.add(env.AggregateID, ev.Seq)
		return nil
	}
	if once {
		must(t, eventbus.HandleOnce(r, name, p.h.Inbox, fn))
	} else {
		must(t, eventbus.Handle(r, name, fn))
	}
	must(t, eventbus.Handle(r, name+"-observer", func(_ context.Context, ev created, env aggregate.Envelope) error {
		observed.add(env.AggregateID, ev.Seq)
		return nil
	}))
	p.run(r)

	var envs []aggregate.Envelope
	for seq := 1; seq <= 10; seq++ {
		ev := p.envelope("A", created{Seq: seq})
		if seq == 4 {
			a4 = ev
		}
		envs = append(envs, ev)
		if seq >= 4 { // B..Z go on meanwhile
			for k := 'B'; k <= 'Z'; k++ {
				if int(k-'B')%7 == seq-4 {
					envs = append(envs, p.envelope(string(k), created{Seq: 1}))
				}
			}
		}
	}
	p.publish(envs...)
	p.eventually(func() bool {
		dl, _, err := p.h.DeadLetters.Get(context.Background(), name, "A")
		return applied.keys() == 26 && err == nil && dl.Parked == 6
	}, "A not parked with 6 events behind it, or B..Z not all handled (%d keys handled)", applied.keys())
	check(t, fmt.Sprint(applied.a()) == "[1 2 3]", "A applied %v before the release, want [1 2 3]", applied.a())
	dl, evs, err := p.h.DeadLetters.Get(context.Background(), name, "A")
	must(t, err)
	check(t, dl.Event.ID == a4.ID && strings.Contains(dl.Reason, "poison A4") && dl.Topic == p.topic,
		"dead letter %s %q on %q, want %s on %q", dl.Event.ID, dl.Reason, dl.Topic, a4.ID, p.topic)
	check(t, len(evs) == 6 && evs[0].Name == "test.created", "parked %d events", len(evs))
	list, err := p.h.DeadLetters.List(context.Background(), name)
	must(t, err)
	check(t, len(list) == 1 && list[0].Key == "A", "List = %+v, want A's dead letter only", list)
	// The observer is a consumer of its own, maybe behind this one.
	p.eventually(func() bool { return len(observed.a()) >= 10 }, "observer saw A %v: another handler's dead letter held it back", observed.a())
	check(t, fmt.Sprint(observed.a()) == fmt.Sprint(seqs(10)), "observer saw A %v, want 1..10 once each", observed.a())
	return applied, observed, a4
}

func testParkingRelease(t *testing.T, p *parkingEnv, once, replay bool) {
	name := p.name(fmt.Sprintf("parking-once-%v-replay-%v", once, replay))
	var broken atomic.Bool
	broken.Store(true)
	applied, observed, _ := p.poisoned(t, name, once, &broken)

	// Parked while A waits: appended behind the others.
	p.publish(p.envelope("A", created{Seq: 11}))
	p.eventually(func() bool {
		dl, _, err := p.h.DeadLetters.Get(context.Background(), name, "A")
		return err == nil && dl.Parked == 7
	}, "A's event 11 not parked")

	broken.Store(false) // the fix
	release := eventbus.ReplayDeadLetter
	want := seqs(14)
	if !replay {
		release = eventbus.SkipDeadLetter
		want = seqs(14, 4)
	}
	// Events of A keep coming while the key is released.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for seq := 12; seq <= 14; seq++ {
			p.publish(p.envelope("A", created{Seq: seq}))
		}
	}()
	must(t, release(context.Background(), p.h.DeadLetters, p.h.Transport.Publisher(), name, "A"))
	<-done
	p.eventually(func() bool { return len(applied.a()) >= len(want) }, "A applied %v, want %v", applied.a(), want)
	check(t, fmt.Sprint(applied.a()) == fmt.Sprint(want), "A applied %v, want %v in order", applied.a(), want)
	p.eventually(func() bool {
		_, _, err := p.h.DeadLetters.Get(context.Background(), name, "A")
		return errors.Is(err, eventbus.ErrNoDeadLetter)
	}, "A's dead letter still there after the release")
	// The release message went to name only.
	p.eventually(func() bool { return len(observed.a()) >= 14 }, "observer saw A %v", observed.a())
	time.Sleep(100 * time.Millisecond)
	check(t, fmt.Sprint(observed.a()) == fmt.Sprint(seqs(14)), "observer saw A %v, want 1..14 once each", observed.a())
	// A flows again.
	p.publish(p.envelope("A", created{Seq: 15}))
	p.eventually(func() bool { return slices.Contains(applied.a(), 15) }, "A's event 15 not applied after the release")
}

func testParkingFailsAgain(t *testing.T, p *parkingEnv) {
	name := p.name("parking-fails-again")
	var broken atomic.Bool
	broken.Store(true)
	applied, _, a4 := p.poisoned(t, name, false, &broken)

	// Replayed without a fix: A4 fails again and stays the dead letter,
	// with 5..10 behind it, and the replay is no longer pending.
	must(t, eventbus.ReplayDeadLetter(context.Background(), p.h.DeadLetters, p.h.Transport.Publisher(), name, "A"))
	p.eventually(func() bool {
		dl, _, err := p.h.DeadLetters.Get(context.Background(), name, "A")
		return err == nil && dl.Release == eventbus.ReleaseNone
	}, "replay of a still-broken A4 did not end")
	dl, _, err := p.h.DeadLetters.Get(context.Background(), name, "A")
	must(t, err)
	check(t, dl.Event.ID == a4.ID && dl.Parked == 6, "after the failed replay: dead %s with %d parked, want %s with 6", dl.Event.ID, dl.Parked, a4.ID)
	check(t, fmt.Sprint(applied.a()) == "[1 2 3]", "A applied %v, want [1 2 3]", applied.a())

	// Skipped: 5..10 apply.
	must(t, eventbus.SkipDeadLetter(context.Background(), p.h.DeadLetters, p.h.Transport.Publisher(), name, "A"))
	want := seqs(10, 4)
	p.eventually(func() bool { return len(applied.a()) >= len(want) }, "A applied %v, want %v", applied.a(), want)
	check(t, fmt.Sprint(applied.a()) == fmt.Sprint(want), "A applied %v, want %v", applied.a(), want)
}
