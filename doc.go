// Package dddkit is a toolkit for Go services built with Domain-Driven
// Design and CQRS, whose domain events must reliably reach other services.
//
// The root package holds only this overview, the one description of how
// the packages fit; each package's own documentation says what is its own.
//
// # The path of a request
//
//	HTTP → cqrs.Bus → command handler → aggregate method → domain event
//	     → repository: aggregate + outbox rows in ONE PostgreSQL transaction
//	       (postgres.UnitOfWork, opened by the cqrs.Transaction middleware)
//	     → outbox.Relay → Kafka (kafka.Client, its one producer)
//	     → eventbus.Router → handler, exactly once through the inbox
//	       (the same unit of work: inbox row + the handler's writes)
//	     → job queue → email, webhook, ...
//
// # Packages
//
// The core packages import neither a database driver nor a Kafka client
// (a test keeps it so); the adapters live in two packages of their own,
// the way River keeps riverdriver/riverpgxv5 apart from river.
//
// Core:
//
//   - [github.com/dddkit/dddkit/aggregate]: the domain building block: a
//     Root to embed, events stamped with ID, version, time and
//     [github.com/dddkit/dddkit/aggregate.Metadata], the one Envelope that
//     carries an event everywhere, and the errors repositories return
//     (not found, already exists, concurrency conflict).
//   - [github.com/dddkit/dddkit/valueobject]: validation at the edge:
//     Email, ID (UUIDv7), Password with argon2id hashing, one error type
//     naming the field.
//   - [github.com/dddkit/dddkit/cqrs]: the in-process command and query bus:
//     typed handlers, middleware (logging that tells refusals from
//     failures, validation, recovery, retry, the unit-of-work
//     transaction), and a start-up check that every handler exists.
//   - [github.com/dddkit/dddkit/retry]: the one retry policy (attempts and
//     jittered backoff) of the bus, the repositories, the relay and the
//     consumers.
//   - [github.com/dddkit/dddkit/repository]: the repository port, the
//     per-aggregate Mapping (snapshots for event-sourced ones), the Stream
//     port of an event store's global order and Follow, the in-memory
//     adapters and the shared adapter test suites.
//   - [github.com/dddkit/dddkit/outbox]: the relay that publishes stored
//     events in per-aggregate order, at least once, over any outbox.Source
//     (in memory or PostgreSQL), with retries and per-aggregate parking of
//     an event that keeps failing.
//   - [github.com/dddkit/dddkit/eventbus]: the one event registry (name ↔
//     Go type, schema versions, upcasters, the topic rule) and wire
//     contract (CloudEvents 1.0), the events catalogue, publishing, the
//     consumer router with retries and dead letters, the inbox port, and
//     an in-memory transport.
//   - [github.com/dddkit/dddkit/projection]: read models from events, on
//     an event store's stream (checkpoints, batches, rebuild, status) or
//     on the bus.
//   - [github.com/dddkit/dddkit/deadline]: events and commands scheduled
//     for a time, keyed so they can be cancelled or replaced.
//   - [github.com/dddkit/dddkit/process]: process managers (state per
//     correlation key, commands, deadlines) and process.Command.
//
// Adapters:
//
//   - [github.com/dddkit/dddkit/postgres]: one DB interface (pool, conn or
//     tx), the unit of work, the repositories and event store (with its
//     stream and snapshots), the outbox table (with deadlines), the inbox,
//     the projection and process stores, and one versioned migrator for
//     all of their tables.
//   - [github.com/dddkit/dddkit/kafka]: one Config and one Client whose one
//     producer (partitioning keys as Java does) serves the relay, the
//     publisher and the dead letters; topic provisioning; consumer groups;
//     the batch and projection consumers.
//
// # Configured once
//
// A service builds one of each and passes it on: one eventbus.Registry
// (every event type registered once: the outbox encodes with it, the
// event store and the consumers decode with it, the relay and the
// consumers take topics from its rule), one database pool, one
// postgres.UnitOfWork, one kafka.Client.
//
// # Guarantees
//
//  1. An event recorded by an aggregate is published if and only if the
//     transaction that saved the aggregate committed. Crash anywhere:
//     nothing is lost; at worst an event is published twice.
//  2. Events of one aggregate reach consumers in the order they were
//     recorded (Kafka key = aggregate ID; the relay never reorders one
//     aggregate's events, also with several relays running).
//  3. A consumer that uses the inbox applies each event's effects once,
//     even when Kafka delivers it twice.
//  4. Concurrent writers of one aggregate never lose an update: the loser
//     gets [github.com/dddkit/dddkit/aggregate.ErrConcurrencyConflict]
//     (and the retry middleware can re-run it).
//  5. A message that cannot be handled ends in a dead-letter topic after
//     bounded retries.
//  6. Bad input is rejected at the edge with a typed error; nothing
//     panics, nothing is half-saved.
//  7. A projection applies each event once, in order per aggregate, and
//     can be rebuilt from the start to the same result.
//  8. A scheduled command survives restarts and fires at least once; the
//     inbox drops its redeliveries.
//
// # Tracing
//
// dddkit starts OpenTelemetry spans through the OpenTelemetry API and
// the global tracer provider; it depends on no SDK. An application that
// installs one (otel.SetTracerProvider) gets one trace from the request
// that recorded an event to the work its consumers do: a span for each
// command and query dispatch, repository save and outbox write; the
// relay's span for each publisher call (a batch), linked to the trace of
// every event in it; the consumer's span for each message (a child of
// the span that saved the event, whose W3C trace context the event
// carries in its metadata, [aggregate.Metadata] TraceParent and
// TraceState, on the wire ce_traceparent and ce_tracestate), the
// handler's, the inbox's and the projection's. Correlation and causation
// IDs are span attributes; messaging spans follow the OpenTelemetry
// semantic conventions. With no tracer provider installed, or a no-op
// one, dddkit starts no span at all, and an incoming trace context is
// still passed on to the events a handler records.
//
// # The example
//
// examples/authnotify is a complete sign-up → email system built on these
// packages; `go run ./examples/authnotify` runs it with nothing else
// installed. See README.md for a walkthrough and docs/guide.md for the
// guide.
package dddkit
