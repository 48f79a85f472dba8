// Package dddkittest helps users of dddkit test their own domain: a
// given/when/then scenario for aggregates, the same for command handlers
// over the in-memory adapters, and a controllable clock.
//
// It depends on the dddkit core packages, watermill's message package and
// testify only (no database driver, no Kafka client), so a domain
// package's tests can import it freely. PostgreSQL helpers are in
// dddkittest/pgtest.
//
// # Aggregates: given, when, then
//
// [Aggregate] starts a scenario: newAgg returns a fresh aggregate whose
// Root is Init'ed; [Scenario.Given] replays past events onto it with
// [aggregate.Replay]; [Scenario.When] calls a method; [Result.Then]
// expects the events the method recorded, compared by type and payload
// (event IDs, versions and times are ignored), and [Result.ThenError]
// expects an error (matched with [errors.Is]). A mismatch fails the test
// with a diff of the expected and recorded events. [Result.OccurredAt]
// asks for the times to be compared too.
//
// # Command handlers: send, then the outbox, then published
//
// [NewCommands] wraps a [cqrs.Bus] whose handlers save through repositories
// that append to an [outbox.Memory]; [Send] sends a command and
// [Sent.ThenOutbox] expects the events it added to the outbox (compared
// as Then compares them), [Sent.ThenError] an error and nothing added.
// [Sent.ThenPublished] then relays the outbox as the embedded mode does
// (an [outbox.Relay] into a recording publisher) and expects the events
// published for the command, decoded with the registry as a consumer
// receives them; [Sent.Published] gives each with its topic.
//
// # A controllable clock
//
// [Clock] is a clock a test moves by hand. Its Now method is an
// [aggregate.Clock] (pass clock.Now to [aggregate.WithClock], to a
// repository's aggregate options so that loaded aggregates see it, or
// wherever dddkit takes a func() time.Time).
package dddkittest
