package deadline_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/deadline"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/process"
)

// InvoiceOverdue is the deadline of an unpaid invoice.
type InvoiceOverdue struct{ Invoice string }

func (InvoiceOverdue) EventName() string { return "billing.invoice_overdue" }

// SendReminder is the command the deadline leads to.
type SendReminder struct{ Invoice string }

var quiet = slog.New(slog.DiscardHandler)

// A scheduled command: a deadline event, scheduled under a key that
// cancels or replaces it, turned into a command when it fires. In
// production the Scheduler is the *postgres.Outbox and the deadline is
// written in the unit of work of ctx; here it is the in-memory outbox.
func Example() {
	ctx := context.Background()
	reg := eventbus.NewRegistry(nil)
	_ = eventbus.Register[InvoiceOverdue](reg, eventbus.AggregateType("invoice"))
	ob, _ := outbox.NewMemory(reg)
	var sched deadline.Scheduler = ob

	// Scheduled while handling a request (or an event): the deadline
	// carries its metadata.
	reqCtx := aggregate.ContextWithMetadata(ctx, aggregate.Metadata{CorrelationID: "req-1"})
	in30Days := time.Now().Add(30 * 24 * time.Hour)
	_ = sched.Schedule(reqCtx, "overdue/inv-1", in30Days, InvoiceOverdue{Invoice: "inv-1"})
	_ = sched.Schedule(reqCtx, "overdue/inv-2", in30Days, InvoiceOverdue{Invoice: "inv-2"})
	paid, _ := sched.Cancel(ctx, "overdue/inv-2") // inv-2 was paid
	fmt.Println("inv-2's deadline cancelled:", paid)
	// Scheduling a key again replaces its deadline: inv-1's is now due.
	_ = sched.Schedule(reqCtx, "overdue/inv-1", time.Now().Add(-time.Second), InvoiceOverdue{Invoice: "inv-1"})

	// The consumer side turns the deadline into the command.
	bus, _ := cqrs.New(nil)
	_ = cqrs.HandleCommand(bus, func(ctx context.Context, cmd SendReminder) (struct{}, error) {
		fmt.Printf("remind %s (correlation %s)\n", cmd.Invoice, aggregate.MetadataFromContext(ctx).CorrelationID)
		return struct{}{}, nil
	})
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: quiet})
	defer transport.Close()
	router, _ := eventbus.NewRouter(transport, reg, &eventbus.RouterConfig{Logger: quiet})
	_ = process.Command(router, "dunning", bus, func(_ context.Context, e InvoiceOverdue, _ aggregate.Envelope) (SendReminder, error) {
		return SendReminder{Invoice: e.Invoice}, nil
	})
	go func() { _ = router.Run(ctx) }()
	defer router.Close()
	<-router.Running()

	// The relay publishes what is due (Run wakes at each due time; Flush
	// publishes once).
	relay, _ := outbox.NewRelay(ob, transport.Publisher(), reg, &outbox.RelayConfig{Logger: quiet})
	n, _ := relay.Flush(ctx)
	fmt.Println("published:", n)
	// Output:
	// inv-2's deadline cancelled: true
	// remind inv-1 (correlation req-1)
	// published: 1
}
