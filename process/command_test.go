package process_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/process"
)

type unregistered struct{}

func (unregistered) EventName() string { return "test.unregistered" }

type noTopic struct{}

func (noTopic) EventName() string { return "test.no_topic" }

// Command dispatches one command per event, with the event's
// correlation and the event as causation; ErrSkip dispatches nothing.
func TestCommandDispatchesWithCausation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bus, err := cqrs.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		cmd SendWelcomeMail
		md  aggregate.Metadata
	}
	var (
		mu   sync.Mutex
		seen []got
	)
	if err := cqrs.HandleCommand(bus, func(ctx context.Context, c SendWelcomeMail) (struct{}, error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, got{c, aggregate.MetadataFromContext(ctx)})
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	reg := eventbus.NewRegistry(nil)
	if err := eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user")); err != nil {
		t.Fatal(err)
	}
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: quiet})
	t.Cleanup(func() { _ = transport.Close() })
	router, err := eventbus.NewRouter(transport, reg, &eventbus.RouterConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := process.Command[UserRegistered, SendWelcomeMail](router, "x", nil, nil); err == nil {
		t.Error("Command accepted a nil bus")
	}
	if err := process.Command(router, "welcome", bus, func(_ context.Context, e UserRegistered, _ aggregate.Envelope) (SendWelcomeMail, error) {
		if e.Email == "" {
			return SendWelcomeMail{}, eventbus.ErrSkip
		}
		return SendWelcomeMail{To: e.Email}, nil
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	t.Cleanup(func() { _ = router.Close(); <-done })
	<-router.Running()
	pub, err := eventbus.NewPublisher(transport.Publisher(), reg)
	if err != nil {
		t.Fatal(err)
	}
	skipped := aggregate.Envelope{ID: "e-0", AggregateType: "user", AggregateID: "u", Version: 1, Payload: UserRegistered{}}
	sent := aggregate.Envelope{ID: "e-1", AggregateType: "user", AggregateID: "u", Version: 2,
		Metadata: aggregate.Metadata{CorrelationID: "corr", CausationID: "http"}, Payload: UserRegistered{Email: "a@b.c"}}
	if err := pub.Publish(ctx, skipped, sent); err != nil { // the memory transport returns once both are handled
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0].cmd.To != "a@b.c" {
		t.Fatalf("dispatched %+v, want one command for e-1", seen)
	}
	if md := seen[0].md; md.CorrelationID != "corr" || md.CausationID != "e-1" {
		t.Errorf("command metadata %+v, want correlation corr, causation e-1", md)
	}
}

// New and On refuse what cannot work, all problems at once.
func TestManagerRefuses(t *testing.T) {
	t.Parallel()
	_, err := process.New[Payment](nil, "", nil, nil)
	for _, want := range []string{"nil Router", "empty name", "nil Store"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(nil, \"\", nil) = %v, want it to say %q", err, want)
		}
	}
	reg := eventbus.NewRegistry(nil)
	if err := eventbus.Register[noTopic](reg); err != nil {
		t.Fatal(err)
	}
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: quiet})
	t.Cleanup(func() { _ = transport.Close() })
	router, err := eventbus.NewRouter(transport, reg, &eventbus.RouterConfig{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	pm, err := process.New[Payment](router, "p", process.NewMemoryStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	key := func(unregistered, aggregate.Envelope) string { return "k" }
	h := func(context.Context, *Payment, unregistered, aggregate.Envelope, *process.Context) error { return nil }
	if err := process.On(pm, key, h); !errors.Is(err, eventbus.ErrNotRegistered) {
		t.Errorf("On of an unregistered event = %v, want ErrNotRegistered", err)
	}
	if err := process.On(pm, func(noTopic, aggregate.Envelope) string { return "k" },
		func(context.Context, *Payment, noTopic, aggregate.Envelope, *process.Context) error { return nil }); err == nil {
		t.Error("On of an event without aggregate type (topic) was accepted")
	}
	if err := process.On[Payment, unregistered](pm, nil, nil); err == nil {
		t.Error("On with nil functions was accepted")
	}
	var pc *process.Context
	if err := process.Dispatch(context.Background(), pc, CancelOrder{}); !errors.Is(err, process.ErrNoBus) {
		t.Errorf("Dispatch without a bus = %v, want ErrNoBus", err)
	}
}
