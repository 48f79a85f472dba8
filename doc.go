// Package dddkit is a toolkit for Go services built with Domain-Driven
// Design and CQRS, whose domain events must reliably reach other services.
//
// The root package holds only this overview; the code lives in the
// packages named below. A request in a dddkit service travels this path:
//
//	HTTP → command bus → handler → aggregate method → domain event
//	     → repository: aggregate + outbox rows in ONE PostgreSQL transaction
//	     → outbox relay → Kafka → consumer (idempotent, via an inbox)
//	     → event handler → job queue → email, webhook, ...
//
// # Packages
//
//   - [github.com/dddkit/dddkit/valueobject] validates input at the edge:
//     Email, ID (UUIDv7), Password with argon2id hashing, and one error
//     type that names the field and the reason.
//   - [github.com/dddkit/dddkit/cqrs] is the in-process command and query
//     bus: typed handlers, middleware (logging, validation, recovery, retry
//     on concurrency conflicts), and a start-up check that every expected
//     command and query has a handler.
//   - [github.com/dddkit/dddkit/aggregate] is the domain building block: a
//     Root to embed, recorded events stamped with ID, version, time and
//     metadata (correlation and causation IDs), and the concurrency-conflict
//     error repositories return.
//   - repository saves an aggregate and its new events in one transaction
//     (PostgreSQL or in memory) with optimistic concurrency.
//   - outbox relays the saved events to Kafka (or any watermill publisher)
//     in per-aggregate order, at least once.
//   - eventbus decodes events on the consumer side, runs handlers with
//     retries and a dead-letter topic, and applies each event's effects
//     exactly once through an inbox table.
//
// # Guarantees
//
//  1. An event recorded by an aggregate is published if and only if the
//     transaction that saved the aggregate committed.
//  2. Events of one aggregate reach consumers in the order they were
//     recorded.
//  3. A consumer that uses the inbox applies each event's effects once, even
//     when Kafka delivers it twice.
//  4. Concurrent writers of one aggregate never lose an update: the loser
//     gets [github.com/dddkit/dddkit/aggregate.ErrConcurrencyConflict].
//  5. A message that cannot be handled ends in a dead-letter topic after
//     bounded retries.
//  6. Bad input is rejected at the edge with a typed error; nothing panics,
//     nothing is half-saved.
//
// # The example
//
// examples/authnotify is a complete sign-up → email system built on these
// packages; `go run ./examples/authnotify` runs it with nothing else
// installed. See README.md for a walkthrough.
package dddkit
