// Package repository is the port through which application code stores
// aggregates: a generic [Repository], an explicit per-aggregate [Mapping],
// the in-memory adapter [Memory], and a test suite (package
// repositorytest) that every adapter passes. The PostgreSQL adapters are
// in package github.com/dddkit/dddkit/postgres: postgres.Repository for
// state-stored aggregates and postgres.EventStore for event-sourced ones.
//
// Every adapter guarantees that an event recorded by an aggregate reaches
// the outbox if and only if the aggregate's new state is stored with it,
// and that concurrent writers of one aggregate never lose an update: the
// loser gets [aggregate.ErrConcurrencyConflict] and nothing of its attempt
// is written.
//
// # The port
//
// [Repository] has three methods:
//
//	Load(ctx, id) (A, error)                    // not found → aggregate.ErrNotFound
//	Save(ctx, a) error                          // state + events, version-checked
//	Update(ctx, id, func(A) error) error        // load → fn → save, one transaction
//
// Update is the usual shape of a command handler (it follows the UpdateHour
// repository method of ThreeDotsLabs' wild-workouts example): the adapter
// owns the transaction, the function only calls domain methods.
//
//	err := users.Update(ctx, cmd.UserID, func(u *domain.User) error {
//		return u.VerifyEmail(cmd.Code, now)
//	})
//
// An error from the function is returned unchanged and nothing is saved, so
// domain errors keep their identity up to the HTTP layer. The events an
// aggregate records carry the request's metadata from the context
// ([aggregate.MetadataFromContext]): correlation and causation IDs.
//
// Every load also applies the Options of the repository's config
// ([MemoryConfig.Options], postgres.RepositoryConfig.Options), the same
// [aggregate.Option] values a constructor passes to Init: with
// aggregate.WithClock there, events recorded after a load are stamped by
// the application's clock, a fake one in tests, exactly like those of a
// new aggregate.
//
// After a successful save the aggregate is marked committed
// ([aggregate.MarkCommitted]); after a failed one it is left exactly as
// it was, uncommitted events included. Saving an aggregate without
// uncommitted events writes nothing: state changes only through events.
//
// Repositories that can find an aggregate by a unique secondary key also
// implement [KeyLoader].
//
// # One transaction for a whole command
//
// A command that changes several aggregates, or writes anything else
// with them, runs in a unit of work: postgres.UnitOfWork.Do, or the
// cqrs.Transaction middleware that wraps every command handler in one.
// Repository calls made with the unit's context join its transaction; none
// opens a second one, and the aggregates are marked committed when the
// unit commits. There are no Tx variants of the methods.
//
// # Mapping
//
// Each state-stored aggregate type supplies a [Mapping]: its type name,
// Encode (state → JSON bytes), Decode (ID + bytes → an Init'ed aggregate),
// and optionally Keys. It is ordinary code in the adapter layer that calls
// the domain package's own constructors; there is no reflection and the
// domain type needs no struct tags. The adapter keeps versions and events
// itself and calls [aggregate.Restore] after Decode. [JSON] builds a
// Mapping from a snapshot struct and two functions:
//
//	mapping := repository.JSON("user",
//		func(u *domain.User) userRow { return userRow{Email: u.Email().String(), ...} },
//		func(id string, r userRow) (*domain.User, error) { return domain.UnmarshalUser(id, r.Email, ...) },
//	)
//	mapping.Keys = func(u *domain.User) []repository.Key {
//		return []repository.Key{{Name: "email", Value: u.Email().String()}}
//	}
//
// Keys are unique per aggregate type and enforced by every adapter alike:
// a save that would take a key another aggregate holds fails with a
// [*DuplicateKeyError] ([ErrDuplicateKey]) and writes nothing; that is how a
// user's email stays unique, with no table of your own. LoadByKey finds an
// aggregate by key (log-in by email).
//
// An event-sourced aggregate type supplies an [EventMapping] instead: how
// to make an empty aggregate. Its events are its state; the service's one
// event registry (eventbus.Registry) encodes and decodes them.
//
// # Memory
//
// [NewMemory] keeps encoded state in memory and hands the events of each
// save to an [EventSink] (an *outbox.Memory) in the same atomic step. It is
// the store of unit tests and of a service running embedded. Because it
// stores what the Mapping encodes, a loaded aggregate never shares memory
// with the store, and a Mapping that loses a field fails in unit tests
// already.
//
// [NewMemoryEventStore] is the in-memory event store: the stores of every
// event-sourced aggregate type share one [MemoryEventLog] (made with
// [NewMemoryEventLog] and the sink), which keeps the events in save order.
//
// # Event streams
//
// An event store's [Stream] is every event of every aggregate type in one
// global order: [StoredEvent.Position]. Read returns the events after a
// position (filtered by event names and aggregate types), Head the newest
// readable position, and Wait blocks until a write may have added events.
// A reader that stores the position of the last event it handled and
// continues from it never misses an event and never sees one twice: Read
// never returns an event while one with a smaller position may still
// commit. [Follow] catches up from a position and then follows live
// writes; projections are built on it. [*MemoryEventLog] and
// postgres.EventStream implement Stream and pass the same suite
// (repositorytest.RunStream).
//
// # Concurrency
//
// Concurrency control is optimistic. Every stored aggregate carries its
// version; Save inserts a new aggregate (committed version 0) and fails
// with an [*aggregate.AlreadyExistsError] if the ID exists (it is not a
// conflict, and nothing retries it), and updates an existing one only if
// the store still holds the version it was loaded at
// ([aggregate.Root.CommittedVersion]). A stale save fails with an
// [*aggregate.ConflictError] that says which version it expected and which
// it found, and none of its events reach the outbox.
//
// Update does not retry by default. Set the Retry field of the config (a
// [retry.Policy]: attempts and a jittered exponential backoff) and it
// re-runs the whole load → fn → save cycle on a conflict, each time with a
// freshly loaded aggregate. Alternatively retry the whole command with the
// cqrs retry middleware (outside cqrs.Transaction); do not stack both.
//
// All repositories are safe for concurrent use; aggregates are not, so do
// not share one aggregate value between goroutines.
package repository
