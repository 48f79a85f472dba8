// Package repository stores aggregates and the events they record: a generic
// [Repository] port, an explicit per-aggregate [Mapping], and adapters that
// behave alike and pass one shared test suite (package repositorytest):
// [Postgres] (state stored in PostgreSQL through pgx/v5), [Memory], and the
// event-sourced [EventStore].
//
// # Where it sits
//
// In a dddkit service a write travels
//
//	HTTP → command bus → handler → aggregate method → domain event
//	     → repository: aggregate row + outbox rows, ONE transaction
//	     → outbox relay → Kafka → consumers
//
// This package is the second line. It guarantees that an event recorded by
// an aggregate reaches the outbox if and only if the aggregate's new state
// was committed with it, and that concurrent writers of one aggregate never
// lose an update: the loser gets [aggregate.ErrConcurrencyConflict] and
// nothing of its attempt is written.
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
// domain errors keep their identity up to the HTTP layer. Before the
// function runs, the aggregate gets the request's metadata from the context
// ([aggregate.MetadataFromContext]): the events it records carry the
// correlation and causation IDs. Load does the same, and Save fills the
// metadata into events that lack it (a new aggregate records its first event
// in its constructor, before any repository has seen the request).
//
// Every load also applies the options of the repository's config
// ([PostgresConfig.Options], [MemoryConfig.Options],
// [EventStoreConfig.Options]), the same [aggregate.Option] values a
// constructor passes to Init: with aggregate.WithClock there, events
// recorded after a load are stamped by the application's clock, a fake
// one in tests, exactly like those of a new aggregate.
//
// After a successful save the aggregate is marked committed
// ([aggregate.MarkCommitted]); after a failed one it is left exactly as
// it was, uncommitted events included. Saving an aggregate without
// uncommitted events writes nothing: state changes only through events.
//
// Repositories that can find an aggregate by a unique secondary key also
// implement [KeyLoader]; [Postgres] and [Memory] do.
//
// # Mapping
//
// Each aggregate type supplies a [Mapping]: its type name, Encode (state →
// JSON bytes), Decode (ID + bytes → an Init'ed aggregate), and optionally
// Keys. It is ordinary code in the adapter layer that calls the domain
// package's own constructors; there is no reflection and the domain type
// needs no struct tags. The adapter keeps versions and events itself and
// calls [aggregate.Restore] after Decode. [JSON] builds a Mapping from a
// snapshot struct and two functions:
//
//	type userRow struct {
//		Email        string    `json:"email"`
//		PasswordHash string    `json:"password_hash"`
//		Status       string    `json:"status"`
//		OTPHash      string    `json:"otp_hash,omitempty"`
//		OTPExpiresAt time.Time `json:"otp_expires_at,omitzero"`
//		OTPAttempts  int       `json:"otp_attempts,omitempty"`
//	}
//
//	mapping := repository.JSON("user",
//		func(u *domain.User) userRow { return userRow{Email: u.Email().String(), ...} },
//		func(id string, r userRow) (*domain.User, error) { return domain.UnmarshalUser(id, r.Email, ...) },
//	)
//	mapping.Keys = func(u *domain.User) []repository.Key {
//		return []repository.Key{{Name: "email", Value: u.Email().String()}}
//	}
//
// Keys are unique per aggregate type and enforced by [Postgres] and
// [Memory] alike: a save
// that would take a key another aggregate holds fails with a
// [*DuplicateKeyError] ([ErrDuplicateKey]) and writes nothing; that is how a
// user's email stays unique, with no table of your own. [Postgres.LoadByKey]
// and [Memory.LoadByKey] find an aggregate by key (log-in by email).
//
// # Adapters
//
// [NewPostgres] stores aggregates in a generic state table (one row per
// aggregate: type, id, version, state jsonb, timestamps) and their keys in a
// keys table; [Migrate] creates both, idempotently and safely from several
// processes at once, with names from [Tables]. Events go through an
// [OutboxWriter] (an *outbox.Store) into the outbox table, in the same
// transaction. [PostgresConfig.AfterSave] runs inside that transaction for
// anything else that must change atomically with the aggregate, such as a
// read model.
//
// [NewMemory] keeps encoded state in memory and hands the events of each
// save to an [EventSink] (an *outbox.Memory) in the same atomic step. It is
// the store of unit tests and of a service running embedded. Because it
// stores what the Mapping encodes, a loaded aggregate never shares memory
// with the store, and a Mapping that loses a field fails in unit tests
// already.
//
// [NewEventStore] keeps an event-sourced aggregate as its events, one row
// each, and rebuilds it on Load by applying them in order
// ([aggregate.Replay]). Its [EventMapping] says how to make an empty
// aggregate and how to decode stored events ([JSONEvents]). The primary key
// (type, id, version) is its concurrency check; everything else (outbox in
// the same transaction, Update, retries, Tx forms) is as with [Postgres].
// It has no snapshots and no unique keys.
//
// # Transactions
//
// Every write of [Postgres] and [EventStore] has a form that joins the
// caller's transaction: [Postgres.SaveTx], [Postgres.UpdateTx], and for
// reads [Postgres.LoadTx] and [Postgres.LoadByKeyTx]. [Transact] runs a function in a transaction
// and marks every aggregate saved through it committed after the commit:
//
//	err := repository.Transact(ctx, pool, func(ctx context.Context, tx pgx.Tx) error {
//		if err := orders.SaveTx(ctx, tx, order); err != nil {
//			return err
//		}
//		return customers.UpdateTx(ctx, tx, order.CustomerID(), func(c *Customer) error {
//			return c.RecordOrder(order.ID())
//		})
//	})
//
// With a transaction of your own, call [aggregate.MarkCommitted] on each
// saved aggregate after your commit succeeds.
//
// A Save is four round trips, the minimum for an explicit transaction:
// BEGIN, the state write (with the key update in the same batch when the
// Mapping has Keys), the outbox insert (one statement for all events),
// COMMIT. Its cost is that of the same statements written by hand with pgx
// (see BenchmarkSave).
//
// # Concurrency
//
// Concurrency control is optimistic. Every row carries the aggregate's
// version; Save inserts a new aggregate (committed version 0) and fails
// with an [*aggregate.AlreadyExistsError] if the ID exists (it is not a
// conflict, and nothing retries it), and updates an existing one only
// WHERE version = the version it was loaded at
// ([aggregate.Root.CommittedVersion]). A stale save fails with an
// [*aggregate.ConflictError] that says which version it expected and which
// it found, and its transaction is rolled back, so none of its events reach
// the outbox. The in-memory adapter checks the same way under a mutex.
//
// Update does not retry by default. Set [PostgresConfig.Retry],
// [MemoryConfig.Retry] or [EventStoreConfig.Retry] (a [retry.Policy]:
// attempts and a jittered exponential backoff) and it re-runs the whole
// load → fn → save cycle on a conflict, each time with a freshly loaded
// aggregate. Alternatively retry at the command level with the cqrs retry
// middleware; do not stack both.
//
// With [PostgresConfig.LockOnUpdate], Update reads the row FOR NO KEY
// UPDATE, so concurrent Updates of one aggregate queue behind each other
// instead of conflicting: worth it for aggregates that are hot, at the price
// of a row lock held while fn runs.
//
// All repositories are safe for concurrent use; aggregates are not, so do
// not share one aggregate value between goroutines.
package repository
