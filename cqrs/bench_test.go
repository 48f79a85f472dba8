package cqrs_test

// Benchmarks of one trivial command: dddkit's bus without and with
// middleware, a direct function call as the floor, and watermill's
// CommandBus + CommandProcessor over an in-process GoChannel as the peer.
//
//	go test -run='^$' -bench=. -benchmem ./cqrs/
//
// Every benchmark reports ns/op and allocs/op per command, and cmds/s.

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wcqrs "github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/internal/telemetry/telemetrytest"
	"github.com/dddkit/dddkit/internal/testinfra"
)

// IncrementCounter is the trivial command: the handler adds By to a counter
// and returns the new value.
type IncrementCounter struct{ By int64 }

func (IncrementCounter) CommandName() string { return "counter.increment" }

func (c IncrementCounter) Validate() error {
	if c.By < 0 {
		return errors.New("by must not be negative")
	}
	return nil
}

type counter struct{ n atomic.Int64 }

func (c *counter) Increment(_ context.Context, cmd IncrementCounter) (int64, error) {
	return c.n.Add(cmd.By), nil
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "cmds/s")
}

// BenchmarkDirectCall is the floor: the handler called through a func value,
// as a port would call an application service without a bus.
func BenchmarkDirectCall(b *testing.B) {
	c := &counter{}
	handle := c.Increment
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := handle(ctx, IncrementCounter{By: 1}); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
}

// BenchmarkBus dispatches the command with cqrs.Send and gets the handler's
// typed result back, synchronously.
func BenchmarkBus(b *testing.B) {
	retry, err := cqrs.Retry(nil)
	if err != nil {
		b.Fatal(err)
	}
	stacks := []struct {
		name       string
		middleware []cqrs.Middleware
	}{
		{"no_middleware", nil},
		{"recover+validation+retry", []cqrs.Middleware{cqrs.Recover(), cqrs.Validation(), retry}},
		{"logging+recover+validation+retry", []cqrs.Middleware{
			cqrs.Logging(slog.New(slog.DiscardHandler)), cqrs.Recover(), cqrs.Validation(), retry,
		}},
	}
	for _, s := range stacks {
		bus, c := benchBus(b, s.middleware)
		ctx := context.Background()
		b.Run(s.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cqrs.Send[int64](ctx, bus, IncrementCounter{By: 1}); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run(s.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := cqrs.Send[int64](ctx, bus, IncrementCounter{By: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportRate(b)
		})
		if c.n.Load() == 0 {
			b.Fatal("handler never ran")
		}
	}
}

// BenchmarkBusTracing dispatches the command without middleware with
// tracing off (no tracer provider installed), with a no-op provider
// installed, and with the OpenTelemetry SDK sampling every span: the cost
// of the dispatch span.
//
//	go test -run='^$' -bench=BusTracing -benchmem -count=5 ./cqrs/
func BenchmarkBusTracing(b *testing.B) {
	for _, mode := range telemetrytest.Modes {
		b.Run(mode, func(b *testing.B) {
			telemetrytest.Use(b, mode)
			bus, c := benchBus(b, nil)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cqrs.Send[int64](ctx, bus, IncrementCounter{By: 1}); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
			if c.n.Load() == 0 {
				b.Fatal("handler never ran")
			}
		})
	}
}

func benchBus(b *testing.B, middleware []cqrs.Middleware) (*cqrs.Bus, *counter) {
	bus, err := cqrs.New(&cqrs.Config{CommandMiddleware: middleware})
	if err != nil {
		b.Fatal(err)
	}
	c := &counter{}
	if err := cqrs.HandleCommand(bus, c.Increment); err != nil {
		b.Fatal(err)
	}
	return bus, c
}

// BenchmarkWatermillCommandBus handles the same command with watermill's
// cqrs.CommandBus (JSON marshaler) publishing to a gochannel.GoChannel
// (default config: non-persistent, Publish does not wait for the ack) and a
// cqrs.CommandProcessor on a message.Router consuming it. Router and pub/sub
// are started before the timer and closed after it.
//
//   - round_trip: one command at a time. An op is CommandBus.Send plus
//     waiting until the handler has run for that command (it signals a
//     channel), then the next command is sent. This is the latency a
//     caller would see, comparable to cqrs.Send (which, unlike watermill,
//     also returns the handler's result).
//   - pipelined: the benchmark sends b.N commands back to back, then waits
//     until the handler has seen all b.N. ns/op is the total time divided by
//     b.N: throughput, not latency.
func BenchmarkWatermillCommandBus(b *testing.B) {
	b.Run("round_trip", func(b *testing.B) {
		done := make(chan struct{}, 1)
		bus := watermillSetup(b, func() { done <- struct{}{} })
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if err := bus.Send(ctx, &IncrementCounter{By: 1}); err != nil {
				b.Fatal(err)
			}
			<-done
		}
		reportRate(b)
	})
	b.Run("pipelined", func(b *testing.B) {
		var seen atomic.Int64
		all := make(chan struct{})
		target := int64(b.N)
		bus := watermillSetup(b, func() {
			if seen.Add(1) == target {
				close(all)
			}
		})
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if err := bus.Send(ctx, &IncrementCounter{By: 1}); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-all:
		case <-time.After(time.Minute):
			b.Fatalf("handler saw %d of %d commands", seen.Load(), target)
		}
		b.StopTimer()
		reportRate(b)
	})
}

// watermillSetup starts a GoChannel, a router and a command processor whose
// handler increments a counter and calls handled; it returns the command bus.
func watermillSetup(b *testing.B, handled func()) *wcqrs.CommandBus {
	b.Helper()
	logger := watermill.NopLogger{}
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger)
	router, err := message.NewRouter(message.RouterConfig{}, logger)
	if err != nil {
		b.Fatal(err)
	}
	marshaler := wcqrs.JSONMarshaler{}
	bus, err := wcqrs.NewCommandBusWithConfig(pubSub, wcqrs.CommandBusConfig{
		GeneratePublishTopic: func(p wcqrs.CommandBusGeneratePublishTopicParams) (string, error) {
			return p.CommandName, nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		b.Fatal(err)
	}
	processor, err := wcqrs.NewCommandProcessorWithConfig(router, wcqrs.CommandProcessorConfig{
		GenerateSubscribeTopic: func(p wcqrs.CommandProcessorGenerateSubscribeTopicParams) (string, error) {
			return p.CommandName, nil
		},
		SubscriberConstructor: func(wcqrs.CommandProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return pubSub, nil
		},
		Marshaler: marshaler,
		Logger:    logger,
	})
	if err != nil {
		b.Fatal(err)
	}
	c := &counter{}
	err = processor.AddHandlers(wcqrs.NewCommandHandler("increment", func(ctx context.Context, cmd *IncrementCounter) error {
		_, err := c.Increment(ctx, *cmd)
		handled()
		return err
	}))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(ctx) }()
	<-router.Running()
	b.Cleanup(func() {
		cancel()
		if err := router.Close(); err != nil {
			b.Error(err)
		}
		if err := <-runErr; err != nil {
			b.Error(err)
		}
		if err := pubSub.Close(); err != nil {
			b.Error(err)
		}
	})
	return bus
}

// BenchmarkBusMetrics measures what the Metrics middleware costs a
// dispatch: off (not in the chain), no-op (in the chain, no SDK installed:
// the global MeterProvider's default) and sdk (an OpenTelemetry SDK with a
// manual reader recording every dispatch), on a bus without other
// middleware and on the usual stack.
//
//	go test -run='^$' -bench=BusMetrics -benchmem -count=6 ./cqrs/
func BenchmarkBusMetrics(b *testing.B) {
	retry, err := cqrs.Retry(nil)
	if err != nil {
		b.Fatal(err)
	}
	sdk := testinfra.NewMetrics(b)
	stacks := []struct {
		name  string
		inner []cqrs.Middleware
	}{
		{"bare", nil},
		{"stack", []cqrs.Middleware{cqrs.Logging(slog.New(slog.DiscardHandler)), cqrs.Recover(), cqrs.Validation(), retry}},
	}
	for _, s := range stacks {
		for _, mode := range []struct {
			name string
			mw   []cqrs.Middleware
		}{
			{"off", nil},
			{"noop", []cqrs.Middleware{cqrs.Metrics()}},
			{"sdk", []cqrs.Middleware{cqrs.MetricsOn(sdk.Meter())}},
		} {
			// Metrics sits just inside Logging, as its documentation says.
			var chain []cqrs.Middleware
			if len(s.inner) > 0 {
				chain = append(chain, s.inner[0])
				chain = append(chain, mode.mw...)
				chain = append(chain, s.inner[1:]...)
			} else {
				chain = mode.mw
			}
			bus, c := benchBus(b, chain)
			ctx := context.Background()
			b.Run(s.name+"/"+mode.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := cqrs.Send[int64](ctx, bus, IncrementCounter{By: 1}); err != nil {
						b.Fatal(err)
					}
				}
				reportRate(b)
			})
			if c.n.Load() == 0 {
				b.Fatal("handler never ran")
			}
		}
	}
}
