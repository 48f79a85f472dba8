// Package eventbus carries domain events between services: the one event
// registry and codec of a service, dddkit's wire contract, publishing and
// consuming over watermill, a consumer [Router] with retries, dead letters
// that keep each key's order, panic recovery, the [Inbox] port that makes a handler's effects
// happen once, and sagas that turn events into commands. It depends on
// watermill's message package and on no broker or database: the Kafka
// adapters live in package [github.com/dddkit/dddkit/kafka], the
// PostgreSQL inbox in package [github.com/dddkit/dddkit/postgres].
//
// # Registry
//
// Every event type a service stores, publishes or consumes is registered
// once, under its stable name (the EventName method, never the Go type's
// name) and with the type of aggregate that records it:
//
//	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:service:auth"})
//	err := eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
//
// That one [Registry] serves the whole service: the outbox and the event
// store encode with [Registry.EncodePayload] (an unregistered event is
// refused when it is written, not when a consumer fails to read it) and
// load with [Registry.DecodePayload]; publishers and consumers use
// [Registry.Encode] and [Registry.Decode].
//
// Registration refuses ([ErrLossyEvent]) an event type that would not
// arrive as it was sent, naming each field: a field encoding/json drops
// without a word — an unexported one, or a value object whose fields are
// all unexported (Money{amount, currency} would travel as {}) — or one it
// cannot encode or decode. Give such a value object MarshalJSON and
// UnmarshalJSON (or MarshalText and UnmarshalText); types with their own
// encoding, such as time.Time, are taken as they are.
//
// # Topics
//
// The aggregate type gives the topic, by the one rule of the service,
// [RegistryConfig.Topic]: [DefaultTopic] unless set, "<aggregate
// type>.events" ("user.events"). The outbox relay publishes by it
// ([Registry.Topic]) and [Handle] subscribes by it, so the two cannot
// disagree. All events of one aggregate share a topic: order is kept per
// topic and key.
//
// # Wire format
//
// A message is a CloudEvent 1.0 in the binary content mode of the Kafka
// protocol binding, so that any CloudEvents SDK, Kafka Connect or Kafka
// Streams reads it: the payload is the JSON encoding of the event
// (encoding/json; give events JSON tags, so that a Go rename never
// changes the wire), and the envelope travels in headers:
// [HeaderSpecVersion] ("1.0"), [HeaderEventID] (ce_id, also the message
// UUID), [HeaderSource] (ce_source, the producing service,
// [RegistryConfig.Source]), [HeaderEventName] (ce_type),
// [HeaderAggregateID] (ce_subject, also the Kafka key, so one aggregate's
// events share a partition and keep their order), [HeaderOccurredAt]
// (ce_time), [HeaderContentType] ("content-type: application/json"), the
// extension attributes [HeaderAggregateType], [HeaderAggregateVersion],
// [HeaderEventVersion], [HeaderCorrelationID] and [HeaderCausationID],
// the distributed-tracing extension ([HeaderTraceParent],
// [HeaderTraceState]), and one plain [HeaderValuePrefix] header per
// free-form metadata value (not CloudEvents attributes: their keys are
// arbitrary). These constants are the one definition of the contract;
// the outbox relay writes exactly what [Registry.Encode] writes, and
// docs/wire-contract.md has the table.
//
// The producers ([Registry.Encode], [Publisher], outbox.NewRelay) need the
// service's source, a URI-reference such as "//auth.example.com" or
// "urn:service:auth", set once in [RegistryConfig.Source]; a service that
// only consumes may leave it empty. Consumers also read the headers dddkit
// wrote before v0.2.0 (event_id, event_name, aggregate_id, ...) where the
// CloudEvents header is absent; that fallback is removed in v0.3.0.
//
// # Versions and upcasters
//
// An event type whose payload changed shape declares its schema version
// with an EventVersion method ([aggregate.Versioned]); the version is
// stored with the event and travels in [HeaderEventVersion] (absent means
// 1; an extension attribute rather than the CloudEvents dataschema, which
// is the URI of a schema document, while consumers need a number to pick
// their upcasters). Older payloads, on a topic or in the event store, are brought up to
// date when they are decoded by registered [UpcastFunc]s, each turning the
// JSON of version n into version n+1:
//
//	func (UserRegistered) EventVersion() int { return 2 }
//
//	eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"),
//		eventbus.Upcaster(1, func(v1 json.RawMessage) (json.RawMessage, error) { ... }))
//
// A version newer than the registered type, or one without a path of
// upcasters, cannot be decoded; the message goes to the dead-letter topic
// ([ErrDecode]).
//
// # Publishing
//
// Events recorded by aggregates are published by the outbox relay, which
// publishes an event if and only if the transaction that saved it
// committed. For everything else — in-process wiring, tests, events whose
// loss on a crash is acceptable — a [Publisher] publishes envelopes
// directly through any watermill publisher (on Kafka, the producer of the
// process's kafka.Client, the one the relay uses too).
//
// # Consuming
//
// A [Router] consumes from a [Transport] — a kafka.Client in production,
// [NewMemoryTransport] in the embedded mode and in tests — and decodes
// with the registry. A handler gets the typed event and its
// [aggregate.Envelope] (ID, aggregate type, ID and version, occurred-at,
// metadata):
//
//	router, err := eventbus.NewRouter(transport, reg, nil)
//	err = eventbus.Handle(router, "welcome-mail", func(ctx context.Context, e UserRegistered, env aggregate.Envelope) error {
//		return mailer.Welcome(ctx, e.Email)
//	})
//	err = router.Run(ctx)
//
// Each handler name is one consumer: on Kafka, one consumer group that
// commits its own offsets, so several handlers of one event are
// independent (a failing one never re-runs the others) and replicas of a
// service share the partitions. Registering several event types under one
// name makes one consumer that sees them in topic order, as a projection
// needs. Messages of types a handler does not handle are acknowledged;
// names unknown to the registry are skipped with a log line or
// dead-lettered, as [RouterConfig.UnknownEvents] says.
//
// Around every handler the router runs, outermost first:
//
//   - dead letters: a message that still fails after the retries, is
//     [Permanent], cannot be decoded or panics every time becomes the
//     dead letter of its key for this handler (see "Dead letters" below):
//     recorded in [RouterConfig.DeadLetters], a copy published to the
//     dead-letter topic, and acknowledged; the later events of its key
//     are parked behind it while the other keys go on;
//   - retries: bounded attempts with jittered exponential backoff
//     ([RouterConfig.Retry], a retry.Policy); errors wrapping
//     [ErrUnavailable] (a database outage) are retried until they pass and
//     never dead-lettered, so an outage makes the partition wait rather
//     than empty it into the dead-letter topic;
//   - with [HandleOnce], the inbox's transaction;
//   - [RouterConfig.Middleware], then panic recovery ([PanicError]).
//
// The handler's context carries the event's [aggregate.Metadata] for
// whatever the handler causes: the correlation ID carried over and the
// event's ID as causation ID. Commands dispatched from the handler and
// events recorded by them are linked to the event without any code in the
// handler. Log lines go to [RouterConfig.Logger] (slog), watermill's too.
//
// # Exactly-once effects: the inbox
//
// Kafka delivers at least once: after a crash, a rebalance or a restart an
// event can come again. [HandleOnce] makes a handler idempotent with an
// [Inbox], which records (handler name, event ID) in the same transaction
// as the handler's effects and runs the handler only for an event it has
// not recorded; a failing handler rolls the record back, and the event is
// retried. The PostgreSQL inbox (postgres.NewInbox, its table created by
// postgres.Migrate) runs the handler in a unit of work: repositories
// called with the handler's context join it, and postgres.TxFromContext
// returns its transaction for the handler's own statements:
//
//	inbox, err := postgres.NewInbox(pool, nil)
//	go inbox.RunCleanup(ctx) // deletes rows older than the retention
//	err = eventbus.HandleOnce(router, "mail-queue", inbox, func(ctx context.Context, e UserRegistered, env aggregate.Envelope) error {
//		tx, _ := postgres.TxFromContext(ctx)
//		_, err := riverClient.InsertTx(ctx, tx, WelcomeMail{To: e.Email}, nil)
//		return err
//	})
//
// Effects outside the database (an HTTP call, an email) are not covered:
// enqueue a job in the same transaction instead (River works on the same
// pool), and let the job runner do the call. [MemoryInbox] is the inbox of
// the embedded mode and of tests; it has no transaction.
//
// # Batches
//
// One transaction per event caps a consumer with an inbox at a few
// thousand events per second, and a Kafka partition's next event waits
// for it. So on a [BatchTransport] (the Client of package kafka) a
// [Router] consumes every handler name registered with [HandleOnce] in
// batches: it gathers up to [RouterConfig.MaxBatch] messages of one
// partition that have arrived (and, with [RouterConfig.MaxWait] set,
// those that arrive within it) and applies them in one
// [Inbox.ProcessBatch] — with the PostgreSQL inbox one
// transaction and one inbox statement — running the handler for each new
// event in offset order in that transaction; then the batch's offsets
// are committed. Statements a handler queues with postgres.QueueExec go
// to the server in one round trip with the commit.
//
// The guarantees are those of one event at a time. Effects happen once
// per event (the inbox rows commit with them; a duplicate, in the batch
// or later, does not run the handler). The events of one key are applied
// in order. When a handler fails or panics for one event, the batch rolls
// back; the events before it are applied again as a batch, the failing
// one is handled alone — its own transaction, the retries of
// [RouterConfig.Retry] (its run in the batch counting as the first),
// [ErrUnavailable] waited out, a dead letter that parks its key when
// it keeps failing (see "Dead letters") — and the events after it form the next batch. When the batch
// fails as a whole (the database is away, a queued statement or the
// commit fails) its events are handled one at a time. Messages that
// cannot be decoded become dead letters without holding up their
// batch. What it costs: a handler can run more than once for an event
// (when its batch rolls back; only the run that committed leaves
// effects). A batch does not wait for messages unless MaxWait is set:
// under load, the messages that arrive while one batch is applied make
// the next.
//
// Handlers registered with [Handle], and every handler on a transport
// that does not batch ([MemoryTransport]), take one message at a time
// through watermill's router, with the same retries, dead letters and
// middleware. Inside the router both paths are one engine: the per-batch
// and the per-message apply call the same function for each run of a
// handler, and one function makes dead letters.
//
// # Dead letters
//
// A dead letter is an event a consumer (one handler name) gave up on,
// together with the key it holds back: its aggregate ID, which is also
// its Kafka key. While it exists, the later events of that key for that
// consumer are parked — stored behind it in order, acknowledged on the
// transport, not handled — so the handler never sees version 5 of an
// aggregate without version 4. Other keys, and other consumers of the
// same events, go on. An operator (or the dddkit CLI) ends it:
//
//   - [ReplayDeadLetter], after the cause is fixed: the consumer handles
//     the dead event again, then every parked event in order, and the key
//     flows again;
//   - [SkipDeadLetter]: the consumer drops the dead event and handles the
//     parked ones in order.
//
// Both record the release in the store and publish the dead event back
// to its topic with its key and [HeaderReleaseFor]: the message arrives
// on the key's partition behind every event parked so far and makes the
// running consumer release the key there, so the order holds while new
// events keep arriving; consumers of other names acknowledge it without
// handling it. If an event fails for good again during the release, it
// becomes the key's dead letter and the rest stay parked. [HandleOnce]
// releases through its inbox, so a release interrupted by a crash
// applies nothing twice.
//
// The dead letters live in a [DeadLetters] store,
// [RouterConfig.DeadLetters]: the PostgreSQL store of package
// [github.com/dddkit/dddkit/postgres] in production (postgres.NewDeadLetters;
// its tables are created by postgres.Migrate), [MemoryDeadLetters] for the
// embedded mode and tests (the default; it loses parked events with the
// process). The store is the record an operator reads — [DeadLetters] List
// (the parked keys of a consumer with the dead event, its error and the
// number of parked events) and Get (one key with its parked events) —
// and acts on. A copy of each dead letter also goes to the dead-letter
// topic ([RouterConfig.DeadLetterTopic], [DefaultDeadLetterTopic]) with
// the reason, the original topic and the handler in headers
// ([HeaderDeadLetterReason], [HeaderDeadLetterTopic],
// [HeaderDeadLetterHandler]), for tools and alerts that watch topics;
// replaying from that topic by hand bypasses the parked events, use
// [ReplayDeadLetter] instead.
//
// # Sagas
//
// Sagas live in package process: process.Command reacts to an event by
// dispatching a command on a cqrs.Bus (the command runs with the event's
// correlation ID and the event as its causation), and a process.Manager
// keeps a state per correlation key across events of several types and
// topics, dispatches commands, schedules deadlines and ends.
//
// # Metrics
//
// Consumers record OpenTelemetry metrics through the global
// MeterProvider (otel.SetMeterProvider; nothing is recorded until an
// application installs an SDK), labelled with the handler name
// (messaging.consumer.group.name) and the topic
// (messaging.destination.name):
//
//   - dddkit.consumer.events {event}: events a consumer is done with, by
//     dddkit.outcome: "handled" (handled, or acknowledged as not for
//     it) or "dead_lettered";
//   - dddkit.consumer.retries {attempt}: failed attempts that are tried
//     again (by handler name only);
//   - dddkit.consumer.delay (s): from the event's occurred-at time (its
//     ce_time) to the end of its handling: the end-to-end latency from
//     the command that recorded it.
//
// Both the [Router]'s handlers and [BatchProcessor]s record them; the
// Kafka consumers of package kafka add dddkit.consumer.lag, per
// partition.
//
// # Transports, inboxes and tests
//
// [MemoryTransport] keeps Kafka's model with one partition per topic:
// every handler name (consumer group) gets every message, in publishing
// order, the next only after the previous was acknowledged; by default
// Publish waits until the handlers acknowledged it. It passes watermill's
// universal Pub/Sub suite. The Client of package kafka
// gives each handler name a consumer group of its own: a watermill-kafka
// subscriber, or batches ([BatchTransport]) for a handler with an inbox.
// Both pass the transport suite of package eventbustest (each test with
// [Handle] and with [HandleOnce]), and
// [MemoryInbox] and the PostgreSQL inbox pass its inbox suite; an adapter
// of another backend runs the same suites.
//
// # Tracing
//
// With an OpenTelemetry tracer provider installed, a [Router] starts a
// consumer span ("process TOPIC", per the messaging semantic
// conventions) for each delivery, a child of the span that recorded the
// event (its trace context travels in [HeaderTraceParent] and
// [HeaderTraceState]); inside it the handler's span ("handle EVENT") and
// the inbox's ("inbox HANDLER"). A [BatchProcessor] starts one consumer
// span per batch, linked to the trace of every event in it, and each
// event's handler span continues that event's trace, linked to the
// batch's. The commands and events a handler records carry the
// handler's trace context on. Without a tracer provider no span is
// started.
package eventbus
