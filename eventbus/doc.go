// Package eventbus carries domain events between services: the one event
// registry and codec of a service, dddkit's wire contract, publishing and
// consuming over watermill, a consumer [Router] with retries, dead letters
// and panic recovery, the [Inbox] port that makes a handler's effects
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
//   - dead-lettering: a message that still fails after the retries, is
//     [Permanent], cannot be decoded or panics every time is published to
//     the dead-letter topic ([RouterConfig.DeadLetterTopic]) with the
//     reason, the original topic and the handler in headers
//     ([HeaderDeadLetterReason], [HeaderDeadLetterTopic],
//     [HeaderDeadLetterHandler]) and acknowledged, so the stream goes on;
//   - retries: bounded attempts with jittered exponential backoff
//     ([RouterConfig.Retry], a retry.Policy); errors wrapping
//     [ErrUnavailable] (a database outage) are retried until they pass and
//     never dead-lettered, so an outage makes the partition wait rather
//     than empty it into the dead-letter topic;
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
// # Batching consumer
//
// [HandleOnce] costs one transaction per event, and a Kafka partition's
// next event waits for it. A [BatchProcessor] applies a partition's events
// in batches instead — up to [BatchConfig.MaxBatch] events in one
// [Inbox.ProcessBatch], with the PostgreSQL inbox one transaction and one
// inbox statement — with the guarantees of HandleOnce: effects once per
// event, one key's events in order, and, when anything in a batch fails,
// the batch handled again one event at a time exactly as HandleOnce would
// (retries, [ErrUnavailable] waited out, dead letters). The BatchConsumer
// of package kafka feeds it from a Kafka consumer group; its documentation
// says when to use it and what it costs.
//
// # Sagas
//
// Sagas live in package process: process.Command reacts to an event by
// dispatching a command on a cqrs.Bus (the command runs with the event's
// correlation ID and the event as its causation), and a process.Manager
// keeps a state per correlation key across events of several types and
// topics, dispatches commands, schedules deadlines and ends.
//
// # Transports, inboxes and tests
//
// [MemoryTransport] keeps Kafka's model with one partition per topic:
// every handler name (consumer group) gets every message, in publishing
// order, the next only after the previous was acknowledged; by default
// Publish waits until the handlers acknowledged it. It passes watermill's
// universal Pub/Sub suite. The Client of package kafka
// uses watermill-kafka with one subscriber (consumer group) per handler
// name. Both pass the transport suite of package eventbustest, and
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
