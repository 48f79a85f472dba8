package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/retry"
)

type itemAdded struct{ Seq int }

func (itemAdded) EventName() string { return "test.item_added" }

// batchTransport is an eventbus.BatchTransport that hands its consumer
// one fixed batch and records what the router marks done and
// dead-letters.
type batchTransport struct {
	batch []*message.Message

	mu          sync.Mutex
	done        []int
	deadLetters []*message.Message
	handled     chan bool // Handle's result
}

func (f *batchTransport) Subscriber(string) (message.Subscriber, error) {
	return nil, errors.New("batchTransport: no subscribers")
}

func (f *batchTransport) Publisher() message.Publisher { return f }

func (f *batchTransport) Publish(_ string, msgs ...*message.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deadLetters = append(f.deadLetters, msgs...)
	return nil
}

func (f *batchTransport) Close() error { return nil }

func (f *batchTransport) ConsumeBatches(ctx context.Context, sub eventbus.BatchSubscription) error {
	f.handled <- sub.Handle(ctx, f.batch, func(i int) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.done = append(f.done, i)
	})
	<-ctx.Done()
	return nil
}

// countingInbox records how a MemoryInbox is called.
type countingInbox struct {
	*eventbus.MemoryInbox
	mu      sync.Mutex
	batches [][]int // Seq of the events of each ProcessBatch
	singles []int   // Seq of the event of each Process
}

func (c *countingInbox) Process(ctx context.Context, handler string, env aggregate.Envelope, fn func(ctx context.Context) error) (bool, error) {
	c.mu.Lock()
	c.singles = append(c.singles, env.Payload.(itemAdded).Seq)
	c.mu.Unlock()
	return c.MemoryInbox.Process(ctx, handler, env, fn)
}

func (c *countingInbox) ProcessBatch(ctx context.Context, handler string, envs []aggregate.Envelope, fn func(ctx context.Context, fresh []aggregate.Envelope) error) error {
	seqs := make([]int, len(envs))
	for i, env := range envs {
		seqs[i] = env.Payload.(itemAdded).Seq
	}
	c.mu.Lock()
	c.batches = append(c.batches, seqs)
	c.mu.Unlock()
	return c.MemoryInbox.ProcessBatch(ctx, handler, envs, fn)
}

// A HandleOnce handler on a BatchTransport gets its events in batches;
// an event that fails is singled out: the events before it are applied
// again as a batch, it is retried alone (its run in the batch counting as
// the first attempt) and dead-lettered, and the events after it form the
// next batch. An undecodable message is dead-lettered without retries,
// and a duplicate is applied once.
func TestHandleOnceBatchSinglesOutTheFailingEvent(t *testing.T) {
	t.Parallel()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:test", Topic: func(string) string { return "items" }})
	if err := eventbus.Register[itemAdded](reg, eventbus.AggregateType("cart")); err != nil {
		t.Fatal(err)
	}
	encode := func(seq int) *message.Message {
		// The failing and the undecodable event are of carts of their
		// own: a dead letter parks the later events of its key.
		id := "c-1"
		if seq == 2 || seq == 9 {
			id = fmt.Sprintf("c-%d", seq)
		}
		msg, err := reg.Encode(aggregate.Envelope{
			ID: fmt.Sprintf("ev-%d", seq), AggregateType: "cart", AggregateID: id, Version: int64(seq + 1),
			OccurredAt: time.Now(), Payload: itemAdded{Seq: seq},
		})
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	undecodable := encode(9)
	undecodable.Payload = []byte(`{"Seq": "nine"}`)
	tr := &batchTransport{
		// 0 1 2(fails) 3 9(undecodable) 4 1(again)
		batch:   []*message.Message{encode(0), encode(1), encode(2), encode(3), undecodable, encode(4), encode(1)},
		handled: make(chan bool, 1),
	}
	inbox := &countingInbox{MemoryInbox: eventbus.NewMemoryInbox()}
	var mu sync.Mutex
	var runs []int     // Seq of every run of the handler
	var names []string // HandlerName of the middleware's context
	r, err := eventbus.NewRouter(tr, reg, &eventbus.RouterConfig{
		Logger: quiet,
		Retry:  retry.Policy{MaxAttempts: 3, BaseDelay: time.Microsecond, MaxDelay: time.Millisecond},
		Middleware: []message.HandlerMiddleware{func(h message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) {
				mu.Lock()
				names = append(names, eventbus.HandlerName(msg.Context()))
				mu.Unlock()
				return h(msg)
			}
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := eventbus.HandleOnce(r, "cart-lines", inbox, func(_ context.Context, e itemAdded, _ aggregate.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, e.Seq)
		if e.Seq == 2 {
			return errors.New("cannot add item 2")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	if ok := <-tr.handled; !ok {
		t.Fatal("the batch was not handled to the end")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// The decoded run 0-3, again without the failing 2 and after it, then
	// the run after the undecodable message (1 again is a duplicate).
	wantBatches := [][]int{{0, 1, 2, 3}, {0, 1}, {3}, {4, 1}}
	if !slices.EqualFunc(inbox.batches, wantBatches, slices.Equal) {
		t.Errorf("ProcessBatch calls %v, want %v", inbox.batches, wantBatches)
	}
	if want := []int{2, 2}; !slices.Equal(inbox.singles, want) {
		t.Errorf("Process calls %v, want %v (attempts 2 and 3 of the failing event)", inbox.singles, want)
	}
	if want := []int{0, 1, 2, 0, 1, 2, 2, 3, 4}; !slices.Equal(runs, want) {
		t.Errorf("handler runs %v, want %v", runs, want)
	}
	if len(tr.deadLetters) != 2 {
		t.Fatalf("%d dead letters, want 2", len(tr.deadLetters))
	}
	if id := tr.deadLetters[0].Metadata.Get(eventbus.HeaderEventID); id != "ev-2" {
		t.Errorf("first dead letter %q, want ev-2", id)
	}
	if reason := tr.deadLetters[0].Metadata.Get(eventbus.HeaderDeadLetterReason); reason != "gave up after 3 attempts: cannot add item 2" {
		t.Errorf("reason %q", reason)
	}
	if id := tr.deadLetters[1].Metadata.Get(eventbus.HeaderEventID); id != "ev-9" {
		t.Errorf("second dead letter %q, want ev-9", id)
	}
	if reason := tr.deadLetters[1].Metadata.Get(eventbus.HeaderDeadLetterReason); !strings.Contains(reason, "cannot decode") || strings.Contains(reason, "attempts") {
		t.Errorf("reason %q, want a decode error without retries", reason)
	}
	if h := tr.deadLetters[1].Metadata.Get(eventbus.HeaderDeadLetterHandler); h != "cart-lines" {
		t.Errorf("dead letter handler %q", h)
	}
	if want := []int{1, 2, 3, 4, 6}; !slices.Equal(tr.done, want) {
		t.Errorf("done %v, want %v", tr.done, want)
	}
	for _, n := range names {
		if n != "cart-lines" {
			t.Fatalf("HandlerName in the middleware %q, want cart-lines", n)
		}
	}
	if len(names) != len(runs) {
		t.Errorf("middleware ran %d times, the handler %d", len(names), len(runs))
	}
}
