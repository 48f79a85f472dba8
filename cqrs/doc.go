// Package cqrs is a typed, in-process command bus and query bus.
//
// An application's ports (HTTP handlers, gRPC services, message consumers,
// scheduled jobs) do not call application services directly: they build a
// command or a query, a plain struct, and hand it to a [Bus]. The bus finds
// the one handler registered for that type, runs it through the middleware
// that applies to every command or every query (logging, validation, panic
// recovery, retry on concurrency conflicts, transactions) and
// returns the handler's result with its static type. Ports stay thin and
// unaware of which service does the work; cross-cutting concerns are written
// once.
//
// # In-process and synchronous
//
// (How the packages fit together is described once, in the root package
// github.com/dddkit/dddkit.) The bus is synchronous and in-process, the caller
// gets the handler's result or error back (an HTTP handler turns it into a
// response), and nothing is serialised. Messages that cross process
// boundaries are domain events, which the outbox and the eventbus package
// carry; commands are not sent over Kafka. Reads take the same bus with
// queries: HTTP handler → [Ask] → query handler → read model.
//
// # Registration
//
// Create a bus with [New] and register one handler per command type with
// [HandleCommand] and one per query type with [HandleQuery]. The command or
// query type and the result type are type parameters, inferred from the
// handler:
//
//	bus, err := cqrs.New(&cqrs.Config{CommandMiddleware: ...})
//	err = cqrs.HandleCommand(bus, registerUser.Handle) // func(context.Context, RegisterUser) (UserID, error)
//	err = cqrs.HandleQuery(bus, getUser.Handle)        // func(context.Context, GetUser) (UserView, error)
//
// A second handler for the same type is refused with [ErrDuplicateHandler].
// A command or query has a stable name, used in log lines and errors, when
// it has a CommandName() string or QueryName() string method; otherwise its
// Go type name stands in.
//
// # Dispatch
//
// [Send] dispatches a command, [Ask] a query; the caller writes only the
// result type, the message type is inferred:
//
//	id, err := cqrs.Send[UserID](ctx, bus, RegisterUser{Email: email})
//	view, err := cqrs.Ask[UserView](ctx, bus, GetUser{ID: id})
//
// [Exec] dispatches a command and discards its result. A type without a
// handler gives an error wrapping [ErrNoHandler]; asking for another result
// type than the handler's gives one wrapping [ErrResultType]. Neither
// panics. Without middleware a dispatch is a lock-free map lookup and a
// direct call of the typed handler: no allocation, no boxing.
//
// Dispatching is safe from many goroutines at once. Registration is meant
// for start-up; it is safe to run concurrently with dispatches too, but a
// dispatch sees a handler only once its registration has returned.
//
// # Middleware
//
// A [Middleware] wraps the untyped [HandlerFunc] of every command (listed in
// [Config.CommandMiddleware]) or every query ([Config.QueryMiddleware]).
// Middlewares apply in the order listed: the first is the outermost, sees
// the [Message] first and the result last. The package ships
//
//   - [Logging]: one slog line per dispatch with name, duration and
//     error, at a level that tells refusals from failures (see below);
//   - [Metrics]: an OpenTelemetry histogram of every dispatch's duration
//     by kind, name and outcome (dddkit.bus.dispatch.duration);
//   - [Recover]: a panic becomes a [*PanicError] ([ErrPanic]);
//   - [Validation]: a payload's Validate() error runs before the handler;
//     a failure is a [*ValidationError] ([ErrValidation]);
//   - [Retry]: re-runs the handler on aggregate.ErrConcurrencyConflict
//     under a [retry.Policy] (bounded, jittered exponential backoff),
//     giving up with a [*retry.Error];
//   - [Transaction]: runs each command handler inside a [UnitOfWork], so
//     that everything it writes commits together or not at all.
//
// A sensible command stack, outermost first, is
//
//	retry, err := cqrs.Retry(nil)
//	bus, err := cqrs.New(&cqrs.Config{
//		CommandMiddleware: []cqrs.Middleware{
//			cqrs.Logging(logger),   // sees every outcome, including panics
//			cqrs.Metrics(),         // one measurement per dispatch, retries included
//			cqrs.Recover(),         // covers everything inside it
//			cqrs.Validation(),      // reject bad input once, not per attempt
//			retry,                  // re-runs what is inside it ...
//			cqrs.Transaction(uow),  // ... so each attempt gets a fresh transaction
//		},
//		QueryMiddleware: []cqrs.Middleware{cqrs.Logging(logger), cqrs.Metrics(), cqrs.Recover(), cqrs.Validation()},
//	})
//
// Writing a middleware is writing a func(next HandlerFunc) HandlerFunc; see
// the examples. One that refuses commands without a tenant, for instance:
//
//	requireTenant := func(next cqrs.HandlerFunc) cqrs.HandlerFunc {
//		return func(ctx context.Context, msg cqrs.Message) (any, error) {
//			if aggregate.MetadataFromContext(ctx).Values["tenant"] == "" {
//				return nil, cqrs.Refuse(errors.New("no tenant"))
//			}
//			return next(ctx, msg)
//		}
//	}
//
// # Tracing
//
// The bus traces every dispatch itself, through the OpenTelemetry API
// and the global tracer provider: a span named "command NAME" or "query
// NAME" around the whole middleware chain, with the correlation and
// causation IDs of the context's metadata as attributes. A failure sets
// the span's error status; a refusal ([Refuse]: bad input, a business
// rule) does not, it is recorded as the attribute dddkit.refused. With no
// tracer provider installed, or a no-op one, no span is started.
//
// # Refusals and failures
//
// A handler's error is either a refusal or a failure. A refusal declines
// the request for a reason of the business or of the input: "email
// already registered", "cannot cancel a shipped order", a field that fails
// validation, an aggregate that does not exist. Nothing is broken and the
// caller gets an answer (an HTTP 4xx). A failure is everything else: a
// database that cannot be reached, a bug, a panic.
//
// [IsRefusal] tells them apart: an error is a refusal when it, or an error
// it wraps, has a method Refusal() bool returning true (errors made by
// [Refuse], a [*ValidationError], valueobject's *Error), or else when it
// matches aggregate.ErrNotFound or aggregate.ErrAlreadyExists. Domain
// packages give their error types the method, without importing cqrs;
// application code wraps with [Refuse]. [Logging] logs refusals at INFO,
// concurrency conflicts at WARN and failures at ERROR; HTTP layers and
// event consumers can apply the same rule with IsRefusal.
//
// # Start-up validation
//
// A handler that was never registered would otherwise surface only when the
// first request needs it. List the commands and queries the application
// dispatches with [Bus.Expect] and call [Bus.Validate] after registering
// handlers, before serving:
//
//	bus.Expect(cqrs.CommandReturning[RegisterUser, UserID](), cqrs.Query[GetUser]())
//	if err := bus.Validate(); err != nil {
//		log.Fatal(err) // names every missing handler, each wrapping ErrNoHandler
//	}
//
// Validate reports every problem at once, joined: each expected type without
// a handler, and each handler whose result type differs from the one given
// to [CommandReturning] or [QueryReturning].
package cqrs
