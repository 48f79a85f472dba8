package cqrs_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/retry"
)

// PlaceOrder is a command. CommandName gives it a stable name for logs and
// errors; Validate is used by the Validation middleware.
type PlaceOrder struct {
	Customer string
	Items    int
}

func (PlaceOrder) CommandName() string { return "order.place" }

func (c PlaceOrder) Validate() error {
	if c.Items <= 0 {
		return errors.New("an order needs at least one item")
	}
	return nil
}

type OrderID int

// GetOrder is a query.
type GetOrder struct{ ID OrderID }

type OrderView struct {
	ID       OrderID
	Customer string
}

// CancelOrder is a command whose handler is forgotten in the Validate
// example.
type CancelOrder struct{ ID OrderID }

// Orders is an application service with one handler per command or query.
type Orders struct{ placed []PlaceOrder }

func (o *Orders) Place(_ context.Context, c PlaceOrder) (OrderID, error) {
	o.placed = append(o.placed, c)
	return OrderID(len(o.placed)), nil
}

func (o *Orders) Get(_ context.Context, q GetOrder) (OrderView, error) {
	if q.ID < 1 || int(q.ID) > len(o.placed) {
		return OrderView{}, aggregate.ErrNotFound
	}
	return OrderView{ID: q.ID, Customer: o.placed[q.ID-1].Customer}, nil
}

// Register handlers, then dispatch commands and queries with typed results.
func Example() {
	bus, err := cqrs.New(nil)
	if err != nil {
		panic(err)
	}
	orders := &Orders{}
	if err := cqrs.HandleCommand(bus, orders.Place); err != nil {
		panic(err)
	}
	if err := cqrs.HandleQuery(bus, orders.Get); err != nil {
		panic(err)
	}

	ctx := context.Background()
	id, err := cqrs.Send[OrderID](ctx, bus, PlaceOrder{Customer: "ada", Items: 2})
	fmt.Println(id, err)

	view, err := cqrs.Ask[OrderView](ctx, bus, GetOrder{ID: id})
	fmt.Printf("%+v %v\n", view, err)

	_, err = cqrs.Ask[OrderView](ctx, bus, GetOrder{ID: 99})
	fmt.Println(errors.Is(err, aggregate.ErrNotFound))

	err = cqrs.Exec(ctx, bus, CancelOrder{ID: id})
	fmt.Println(err)
	fmt.Println(errors.Is(err, cqrs.ErrNoHandler))

	_, err = cqrs.Send[string](ctx, bus, PlaceOrder{Customer: "bob", Items: 1})
	fmt.Println(err)
	// Output:
	// 1 <nil>
	// {ID:1 Customer:ada} <nil>
	// true
	// cqrs: no handler for command cqrs_test.CancelOrder
	// true
	// cqrs: result type mismatch for command order.place (cqrs_test.PlaceOrder): the handler returns cqrs_test.OrderID, the caller asked for string
}

// Middlewares apply in the order listed, the first outermost. This one
// combines the shipped Recover and Validation with a hand-written
// middleware that prints what it sees.
func ExampleMiddleware() {
	trace := func(label string) cqrs.Middleware {
		return func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
			return func(ctx context.Context, msg cqrs.Message) (any, error) {
				fmt.Printf("%s: enter %s %s\n", label, msg.Kind, msg.Name)
				res, err := next(ctx, msg)
				fmt.Printf("%s: leave with %v, %v\n", label, res, err)
				return res, err
			}
		}
	}
	bus, err := cqrs.New(&cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{trace("outer"), cqrs.Recover(), cqrs.Validation(), trace("inner")},
	})
	if err != nil {
		panic(err)
	}
	if err := cqrs.HandleCommand(bus, (&Orders{}).Place); err != nil {
		panic(err)
	}

	ctx := context.Background()
	_, _ = cqrs.Send[OrderID](ctx, bus, PlaceOrder{Customer: "ada", Items: 1})

	_, err = cqrs.Send[OrderID](ctx, bus, PlaceOrder{Customer: "ada"})
	fmt.Println(errors.Is(err, cqrs.ErrValidation))
	// Output:
	// outer: enter command order.place
	// inner: enter command order.place
	// inner: leave with 1, <nil>
	// outer: leave with 1, <nil>
	// outer: enter command order.place
	// outer: leave with <nil>, cqrs: invalid command order.place: an order needs at least one item
	// true
}

// Validate fails at start-up, naming every expected command and query that
// has no handler.
func ExampleBus_Validate() {
	bus, err := cqrs.New(nil)
	if err != nil {
		panic(err)
	}
	orders := &Orders{}
	if err := cqrs.HandleCommand(bus, orders.Place); err != nil {
		panic(err)
	}
	// GetOrder's and CancelOrder's handlers are forgotten.

	bus.Expect(
		cqrs.CommandReturning[PlaceOrder, OrderID](),
		cqrs.Command[CancelOrder](),
		cqrs.QueryReturning[GetOrder, OrderView](),
	)
	err = bus.Validate()
	fmt.Println(err)
	fmt.Println(errors.Is(err, cqrs.ErrNoHandler))
	// Output:
	// cqrs: no handler for command cqrs_test.CancelOrder
	// cqrs: no handler for query cqrs_test.GetOrder
	// true
}

// Retry re-runs a command whose save lost a race with another writer.
func ExampleRetry() {
	onConflict, err := cqrs.Retry(&cqrs.RetryConfig{
		Policy: retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond},
		OnRetry: func(_ context.Context, msg cqrs.Message, attempt int, err error) {
			fmt.Printf("attempt %d of %s failed: %v\n", attempt, msg.Name, err)
		},
	})
	if err != nil {
		panic(err)
	}
	bus, err := cqrs.New(&cqrs.Config{CommandMiddleware: []cqrs.Middleware{onConflict}})
	if err != nil {
		panic(err)
	}
	attempts := 0
	err = cqrs.HandleCommand(bus, func(context.Context, CancelOrder) (struct{}, error) {
		// Load the order, cancel it, save it: the save finds a newer version once.
		attempts++
		if attempts == 1 {
			return struct{}{}, &aggregate.ConflictError{Type: "order", ID: "1", Expected: 3, Actual: 4}
		}
		return struct{}{}, nil
	})
	if err != nil {
		panic(err)
	}

	err = cqrs.Exec(context.Background(), bus, CancelOrder{ID: 1})
	fmt.Println(err, attempts)
	// Output:
	// attempt 1 of cqrs_test.CancelOrder failed: aggregate: concurrency conflict on order 1: expected version 3, found 4
	// <nil> 2
}

// unitOfWork stands in for a database's unit of work, such as
// postgres.UnitOfWork: it commits when fn succeeds and rolls back when it
// fails.
type unitOfWork struct{}

type exampleTxKey struct{}

func (unitOfWork) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	fmt.Println("begin")
	if err := fn(context.WithValue(ctx, exampleTxKey{}, "tx-1")); err != nil {
		fmt.Println("rollback:", err)
		return err
	}
	fmt.Println("commit")
	return nil
}

// Transaction runs every command handler in a unit of work: everything the
// handler writes commits together, or nothing does.
func ExampleTransaction() {
	bus, err := cqrs.New(&cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Validation(), cqrs.Transaction(unitOfWork{})}})
	if err != nil {
		panic(err)
	}
	err = cqrs.HandleCommand(bus, func(ctx context.Context, c PlaceOrder) (OrderID, error) {
		fmt.Println("handling in", ctx.Value(exampleTxKey{}))
		if c.Customer == "" {
			return 0, errors.New("unknown customer")
		}
		return 1, nil
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	_, _ = cqrs.Send[OrderID](ctx, bus, PlaceOrder{Customer: "ada", Items: 1})
	_, _ = cqrs.Send[OrderID](ctx, bus, PlaceOrder{Items: 1})
	// Output:
	// begin
	// handling in tx-1
	// commit
	// begin
	// handling in tx-1
	// rollback: unknown customer
}

// IsRefusal tells an error by which the application declines a request
// (bad input, a business rule, not found) from a failure. Refuse marks an
// error as a refusal; a domain error type can instead have a method
// Refusal() bool.
func ExampleIsRefusal() {
	errShipped := cqrs.Refuse(errors.New("order is shipped and cannot be cancelled"))

	for _, err := range []error{
		fmt.Errorf("cancel order 7: %w", errShipped),
		fmt.Errorf("load order 8: %w", aggregate.ErrNotFound),
		&aggregate.ConflictError{Type: "order", ID: "9", Expected: 3, Actual: 4},
		errors.New("connection refused"),
	} {
		fmt.Printf("%t: %v\n", cqrs.IsRefusal(err), err)
	}
	// Output:
	// true: cancel order 7: order is shipped and cannot be cancelled
	// true: load order 8: aggregate: not found
	// false: aggregate: concurrency conflict on order 9: expected version 3, found 4
	// false: connection refused
}

// Logging writes one line per dispatch: debug on success, info for a
// refusal such as invalid input, error for a failure. The command's fields
// are not logged. Time and duration are dropped here to keep the output
// stable.
func ExampleLogging() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		},
	}))
	bus, err := cqrs.New(&cqrs.Config{CommandMiddleware: []cqrs.Middleware{cqrs.Logging(logger), cqrs.Validation()}})
	if err != nil {
		panic(err)
	}
	if err := cqrs.HandleCommand(bus, (&Orders{}).Place); err != nil {
		panic(err)
	}
	ctx := context.Background()
	_, _ = cqrs.Send[OrderID](ctx, bus, PlaceOrder{Customer: "ada", Items: 1})
	_, _ = cqrs.Send[OrderID](ctx, bus, PlaceOrder{Customer: "ada"})
	// Output:
	// level=DEBUG msg="cqrs: command handled" kind=command name=order.place
	// level=INFO msg="cqrs: command refused" kind=command name=order.place error="cqrs: invalid command order.place: an order needs at least one item"
}
