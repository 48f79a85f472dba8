// Package postgres holds every PostgreSQL adapter of dddkit, on
// jackc/pgx/v5: the repositories, the event store, the transactional
// outbox, the inbox, the unit of work that they all join, and one
// versioned migrator for every table they use. The core packages
// (aggregate, repository, outbox, eventbus, cqrs) import no database
// driver; this package plugs them into PostgreSQL.
//
// # One database handle
//
// Every constructor takes a [DB]: *pgxpool.Pool, *pgx.Conn and pgx.Tx all
// satisfy it. A service passes its pool everywhere. (The outbox relay's
// leader holds connections of its own, one for its advisory locks and
// another for LISTEN, so the [Outbox] a relay reads must be given a
// pool.)
//
// # Tables and migrations
//
// [Tables] names the tables (the zero value: default names in the
// connection's current schema); give the same value to every adapter
// through its config. [Migrate] creates or upgrades them all, in one
// transaction under an advisory lock, so several replicas may run it at
// start-up at once. [Version] reports the schema version the database has
// and the one this dddkit needs; adapters refuse to work on an older one
// ([ErrNotMigrated]). Teams that run goose, atlas or Flyway take the SQL
// of each step from [Migrations] instead. A database set up by the dddkit
// releases before this package (outbox.Migrate, repository.Migrate,
// Inbox.Migrate) migrates forward in place.
//
//	if err := postgres.Migrate(ctx, pool, nil); err != nil { ... }
//
// # The unit of work
//
// A [UnitOfWork] runs a function in one transaction that everything in
// this package joins: [Repository] and [EventStore] writes (any number of
// aggregates), the outbox rows of their events, the inbox row of the event
// being handled, and the caller's own SQL through [TxFromContext] (a River
// job inserted with InsertTx, a read model). A repository call made with
// the unit's context never opens a second transaction; one made without a
// unit is a transaction of its own. Nested units join the outer one.
//
//	err := uow.Do(ctx, func(ctx context.Context) error {
//		if err := orders.Save(ctx, order); err != nil {
//			return err
//		}
//		return customers.Update(ctx, order.CustomerID(), func(c *Customer) error {
//			return c.RecordOrder(order.ID())
//		})
//	})
//
// cqrs.Transaction(uow) wraps every command handler in a unit, so
// handlers contain no transaction code at all.
//
// On a *pgxpool.Pool a unit takes its connection and begins its
// transaction with its first statement: BEGIN goes to PostgreSQL in that
// statement's round trip, and a unit that runs no statement costs none.
// The transaction [TxFromContext] returns begins the same way on Exec
// (with arguments), Query, QueryRow and SendBatch; its other methods, and
// an Exec without arguments, begin it on its own first.
//
// Writes whose results the unit does not wait for are held back and sent
// with the COMMIT, in its round trip: the save of a Repository without
// unique keys or of an EventStore (by Save or Update), and the
// statements an inbox or projection batch queued with [QueueExec]. A
// command that saves one aggregate costs one round trip (BEGIN, the
// save, COMMIT), one that loads and saves two. A statement the unit runs
// after a held write sends it first, in a round trip of its own, so the
// unit reads what it wrote; [Flush] sends them on its own. While a
// savepoint begun on [TxFromContext]'s transaction is open, nothing is
// held back: its rollback undoes what was written in it; nor after its
// Conn or LargeObjects handed the connection out.
//
// A held write that fails rolls the unit back, and its error (an
// [*aggregate.ConflictError] or [*aggregate.AlreadyExistsError], as Save
// returns them on its own) becomes the unit's: Do returns it, or the
// statement (or Flush) that sent the write does, and nothing after it
// runs. The conflict's Actual version is -1 there: the aborted
// transaction cannot read it. A save with unique keys is sent at once, so
// that Save itself returns a [*repository.DuplicateKeyError] that the
// caller can turn into its domain's error. A Save or Update that fails
// at once makes the unit roll back too, even if the function returns nil
// ([ErrRollbackOnly]): nothing is ever half-saved. Aggregates are marked
// committed only after the commit.
//
// # Repositories
//
// [NewRepository] stores state-stored aggregates in a generic table (one
// row per aggregate: type, id, version, state jsonb, timestamps) and their
// unique keys in a keys table, with optimistic concurrency on the version
// (or a row lock with [RepositoryConfig].LockOnUpdate). [NewEventStore]
// keeps an event-sourced aggregate as its events, one row each with the
// payload's schema version, and replays them on load, upcasting old
// payloads through the event registry. Both pass the shared suite of
// package repositorytest, like the in-memory adapter.
//
// A save is one round trip: the version-checked write of the aggregate
// (its row and keys, or its events), its outbox rows and, on its own,
// the commit go to PostgreSQL as one statement (or one pipelined batch)
// in PostgreSQL's implicit transaction, without BEGIN and COMMIT; a
// conflict writes nothing or fails the statement, so nothing commits
// half-saved. In a unit of work on a pool the save is held back and goes
// out with the unit's COMMIT (see above). An Update
// without LockOnUpdate reads the aggregate and then saves it that way:
// two round trips.
//
// An event store snapshots an aggregate type when its
// repository.EventMapping has a Snapshot: every N events (per aggregate
// type), the save that crosses a multiple of N also writes the
// aggregate's state to the snapshots table, in its own transaction; a
// load starts from the newest snapshot of the mapping's schema version
// and replays only the later events. A snapshot of another schema
// version, or one that does not decode, is ignored: the load replays
// every event.
//
// # Event streams
//
// [NewEventStream] reads the events table as one global stream (a
// repository.Stream): every event of every aggregate type, by position,
// filtered by event names and aggregate types, woken by NOTIFY at
// commit. Positions are handed out under an append lock held until
// commit, so a reader that continues from the last position it handled
// never skips an event that a concurrent transaction commits late; see
// [EventStream] for the technique and the alternatives.
// repository.Follow catches up and then follows it.
//
// # The outbox
//
// [NewOutbox] is the outbox table. Repositories write their events into
// it in the saving transaction; an outbox.Relay reads it (it is an
// outbox.Source) and publishes the events in per-aggregate order, woken
// by NOTIFY at commit. A [UnitOfWork] on a pool, and a save or
// [Outbox.Write] on its own on a pool, send that notification right
// after their commit, one at a time per pool and channel, instead of in
// their transaction: a NOTIFY in a transaction holds PostgreSQL's
// notification lock through the commit, which makes every notifying
// commit wait for the one before it (with fsync on, 16 clients: 889
// commits/s, against 3,774 without). When the Outbox's relay runs in the
// same process and leads every shard (one relay), they wake it directly
// and send no NOTIFY at all. Other writes are notified by the tables'
// triggers at commit. Its operator calls ([Outbox.Stats], [Outbox.List],
// [Outbox.Get], [Outbox.Retry], [Outbox.Discard], [Outbox.Leaders],
// [Outbox.DeletePublished]) answer "is the relay running, how far behind
// is it, which events failed and why, who relays what" without SQL; the
// dddkit command (cmd/dddkit) is them on the command line.
//
// # Sharded relays and fencing
//
// Every outbox row carries a shard key, a stable hash of its aggregate ID
// computed by the database; its shard is that key modulo
// [OutboxConfig].Shards (16 by default). Each relay replica leads a fair
// share of the shards, at most ceil(shards / replicas), with a
// session-level advisory lock per shard: N replicas relay in parallel,
// each aggregate's events by one relay at a time and in order, and one
// replica alone leads everything. When replicas join, the others hand
// shards over (each once its rows in flight are marked); when one leaves
// or dies, the others take its shards within LeaderPollInterval.
//
// A relay claims and marks rows only on the connection that holds its
// locks: once that session is gone (killed, or its socket half-open
// behind a dead NAT) no claim or mark of its shards succeeds, so it
// publishes at most the batch it had in flight, and [ErrNotLeader] ends
// its leadership. [OutboxConfig].LeaderTimeout bounds how long that takes
// (each statement's deadline, and TCP keepalives and TCP_USER_TIMEOUT on
// both ends of the lock connection). docs/scaling.md has the throughput
// arithmetic.
//
// Events are encoded with the service's one event registry
// (eventbus.Registry), so an event type that was never registered is
// refused when it is written, not when a consumer fails to read it.
//
// # Deadlines and process managers
//
// [Outbox.Schedule] and [Outbox.Cancel] make the outbox package
// deadline's Scheduler: a deadline is an outbox row that becomes due at
// a time, written in the unit of work of ctx, so it commits with what
// scheduled it and survives restarts and relay fail-over.
// [NewProcessStore] is the process.Store of package process: the state
// of each process-manager instance and the inbox record of each applied
// event, in one unit of work that the handler's commands and deadlines
// join.
package postgres
