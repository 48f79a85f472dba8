// Package eventbus carries domain events between services: a typed
// registry and codec, publishing and consuming over watermill (Kafka,
// in-memory), a consumer [Router] with retries, dead letters and panic
// recovery, a PostgreSQL [Inbox] that makes a handler's effects happen once,
// and sagas that turn events into commands.
//
// # Where it sits
//
// In a dddkit service an event travels
//
//	aggregate method → domain event
//	  → repository.Save: aggregate row + outbox rows, one transaction
//	  → outbox relay → Kafka topic
//	  → eventbus.Router → handler (→ inbox, → cqrs command)
//
// This package is the last line, and the wire format in between: the outbox
// relay writes messages with the same headers and topic rule this package
// reads (both come from one internal package, so they cannot drift apart).
//
// # Registry
//
// Every event type a service publishes or consumes is registered once, under
// its stable name (the EventName method, never the Go type's name) and with
// the type of aggregate that records it:
//
//	reg, err := eventbus.NewRegistry(nil)
//	err = eventbus.Register[UserRegistered](reg, eventbus.AggregateType("user"))
//
// The aggregate type gives the topic. [DefaultTopic] is "<aggregate
// type>.events" ("user.events"), the outbox relay's default too; set
// [RegistryConfig.Topic] (and the relay's topic function) to group topics
// differently, for example one per bounded context. All events of one
// aggregate must share a topic: order is kept per topic and key.
//
// # Wire format
//
// A message is the JSON encoding of the event (encoding/json, no struct tags
// needed) with the envelope in headers: [HeaderEventID] (also the message
// UUID), [HeaderEventName], [HeaderEventVersion], [HeaderAggregateType],
// [HeaderAggregateID] (also the Kafka key, so one aggregate's events share a
// partition and keep their order), [HeaderAggregateVersion],
// [HeaderOccurredAt], [HeaderCorrelationID], [HeaderCausationID],
// [HeaderTraceParent], and one [HeaderValuePrefix] header per metadata
// value. [Registry.Encode] and [Registry.Decode] convert; a consumer gets
// the registered Go value and a [Metadata].
//
// # Versions and upcasters
//
// An event type whose payload changed shape declares its schema version
// with an EventVersion method ([Versioned]); the version travels in
// [HeaderEventVersion] (absent means 1). Old messages still on a topic are
// brought up to date on consume by registered [UpcastFunc]s, each turning
// the JSON of version n into version n+1:
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
// loss on a crash is acceptable — a [Publisher] publishes directly through
// any watermill publisher; [PublishEvent] stamps an envelope for an event
// that no aggregate recorded. On Kafka, publish through the producer of
// a Client of package [github.com/dddkit/dddkit/kafka] (acks=all,
// idempotent, key = aggregate ID), the one the outbox relay uses too.
//
// # Consuming
//
// A [Router] consumes from a [Transport] — a kafka.Client in production,
// [NewMemoryTransport] in the embedded mode and in tests — and
// decodes with the registry. Handlers are typed by the event:
//
//	router, err := eventbus.NewRouter(transport, reg, nil)
//	err = eventbus.Handle(router, "welcome-mail", func(ctx context.Context, e UserRegistered, md eventbus.Metadata) error {
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
//     ([RouterConfig.Retry]); errors wrapping [ErrUnavailable] (a database
//     outage) are retried until they pass and never dead-lettered, so an
//     outage makes the partition wait rather than empty it into the
//     dead-letter topic;
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
// event can come again. [HandleTx] makes a handler idempotent with an
// [Inbox], a PostgreSQL table keyed by (handler name, event ID). Each
// delivery runs in one transaction that first inserts the inbox row
// (INSERT ... ON CONFLICT DO NOTHING); if the row already exists the
// handler does not run and the delivery is acknowledged. Otherwise the
// handler gets the transaction, and its writes and the inbox row commit
// together — or roll back together, and the event is retried:
//
//	inbox, err := eventbus.NewInbox(pool, nil)
//	err = inbox.Migrate(ctx) // idempotent, safe from many replicas at once
//	go inbox.RunCleanup(ctx) // deletes rows older than InboxConfig.Retention
//	err = eventbus.HandleTx(router, "mail-queue", inbox, func(ctx context.Context, tx pgx.Tx, e UserRegistered, md eventbus.Metadata) error {
//		_, err := tx.Exec(ctx, `INSERT INTO mail_jobs ...`, md.EventID, e.Email)
//		return err
//	})
//
// Effects outside the database (an HTTP call, an email) are not covered:
// enqueue a job in the same transaction instead (River works on the same
// pool), and let the job runner do the call.
//
// # Batching consumer
//
// [HandleTx] costs one PostgreSQL transaction per event, and a Kafka
// partition's next event waits for it. A [BatchProcessor] applies a
// partition's events in batches instead — up to [BatchConfig.MaxBatch]
// events, their inbox rows inserted with one statement, in one
// transaction — with the guarantees of HandleTx: effects once per event,
// one key's events in order, and, when anything in a batch fails, the
// batch handled again one event at a time exactly as HandleTx would
// (retries, [ErrUnavailable] waited out, dead letters). The BatchConsumer
// of package [github.com/dddkit/dddkit/kafka] feeds it from a Kafka
// consumer group; its documentation says when to use it and what it
// costs.
//
// # Sagas
//
// [Saga] reacts to an event by dispatching a command on a cqrs.Bus; the
// command runs with the event's correlation ID and the event as its
// causation.
//
// # Transports and tests
//
// [MemoryTransport] is watermill's GoChannel: every handler name gets every
// message, and by default Publish waits until the handlers acknowledged it,
// which keeps a publisher's events in order. The Client of package
// [github.com/dddkit/dddkit/kafka] uses watermill-kafka with one
// subscriber (consumer group) per handler name. Both pass the shared suite
// in package eventbustest, which any other transport can run too.
package eventbus
