// Package aggregate is the domain layer's building block: a [Root] to embed
// in an aggregate struct, and the contract of a domain [Event].
//
// It has no dependencies outside the standard library: domain code built on
// it needs no database driver, no message broker and no storage struct tags.
//
// # Recording events
//
// (How the packages fit together is described once, in the root package
// github.com/dddkit/dddkit.) A behaviour method checks the business rules and then calls [Root.Record]; Record
// applies the event to the aggregate's state (through the aggregate's own
// [ApplyFunc]) and keeps it, stamped, in the list of uncommitted events
// ([Root.Changes]). The repository saves state and those events in one
// transaction and then calls [MarkCommitted].
//
// # Events
//
// An [Event] is any Go value with a stable name:
//
//	type UserRegistered struct{ Email string }
//
//	func (UserRegistered) EventName() string { return "auth.user_registered" }
//
// The name, not the Go type, identifies the event in storage and on the
// wire, so renaming the type breaks nothing. When recorded, an event is
// wrapped in an [Envelope] that adds an event ID (UUIDv7), the aggregate's
// type, ID and the version the event produced, the time from the root's
// [Clock], and [Metadata]: correlation and causation IDs, a W3C traceparent
// and free key/values, which travel with the event to every consumer.
//
// An event whose payload changes shape over time declares its schema
// version with an EventVersion method ([Versioned]); the event registry
// (package eventbus) stores the version with the payload and upcasts older
// payloads when it decodes them.
//
// # State-stored and event-sourced aggregates
//
// A state-stored aggregate is read from a row; its repository mapping fills
// the fields and the repository calls [Restore] with the stored version. An
// event-sourced aggregate is rebuilt with [Replay] from its history; each
// event goes through the same apply function as when it was recorded. Either
// way [Root.CommittedVersion] is what the store holds, and a repository
// refuses to save over a different one with [ErrConcurrencyConflict]. A new
// aggregate (CommittedVersion 0) whose ID is taken is refused with
// [ErrAlreadyExists], which, unlike a conflict, retrying cannot cure.
//
// Restore and Replay take the same [Option] values as [Root.Init], so a
// repository hands a loaded aggregate the caller's clock ([WithClock]) and
// the request's metadata ([WithMetadata]): events recorded after a load are
// stamped exactly like those of a new aggregate.
//
// # Domain surface and lifecycle
//
// The methods of [Root], and so of every aggregate that embeds it, are what
// domain and application code need: [Root.Init], [Root.Record], [Root.ID],
// [Root.Type], [Root.Version], [Root.CommittedVersion], [Root.IsNew],
// [Root.Changes], [Root.HasChanges] and [Root.Metadata]. The lifecycle that
// only repositories drive — [Restore], [Replay], [MarkCommitted] — is made of
// package functions, so user.MarkCommitted() does not compile.
package aggregate
