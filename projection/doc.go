// Package projection builds read models from events: a [Projection]
// declares the event types it handles, with one typed function each,
// and updates a read model; a checkpoint committed in the same
// transaction as the read model's writes makes every event count once,
// even across crashes.
//
// # Declaring a projection
//
// A projection has a stable name and handles events registered in the
// service's one [eventbus.Registry]:
//
//	p, err := projection.New("activity", reg)
//	err = projection.On(p, func(ctx context.Context, e UserRegistered, env aggregate.Envelope) error {
//		tx, _ := postgres.TxFromContext(ctx)
//		_, err := tx.Exec(ctx, `INSERT INTO activity (user_id, type, at) VALUES ($1, 'registered', $2)`,
//			env.AggregateID, env.OccurredAt)
//		return err
//	})
//	p.OnReset(func(ctx context.Context) error {
//		tx, _ := postgres.TxFromContext(ctx)
//		_, err := tx.Exec(ctx, `TRUNCATE activity`)
//		return err
//	})
//
// Declaring an unregistered type is an error (wrapping
// [eventbus.ErrNotRegistered]). A handler writes the read model with the
// ctx it gets, which carries the transaction of its batch; it must have
// no other effects, because it may run again for an event when another
// event of its batch fails.
//
// # Two sources, one projection
//
// The same Projection value runs on either source:
//
//   - The event store's stream ([repository.Stream], such as
//     postgres.EventStream or repository.MemoryEventLog): a [Runner]
//     reads the declared events after the checkpoint in batches
//     ([RunnerConfig] BatchSize, default [DefaultBatchSize]: 1000), applies a
//     batch and saves the new checkpoint in one [Store] transaction, and
//     then waits for new events ([repository.Stream] Wait, woken by the
//     writes). Checkpoints live in a [Store]: postgres.ProjectionStore,
//     whose transactions are the units of work the read model's SQL
//     joins, or [MemoryStore], whose transactions stage in-memory writes
//     with [OnCommit]. This is the source to prefer: it can rebuild, and
//     it never skips an event.
//   - The event bus: [Projection.Subscribe] registers the projection on
//     an eventbus.Router (on Kafka, a partition's events are applied in
//     batches, one transaction each; on the in-memory transport one at a
//     time). It deduplicates by event ID with an eventbus.Inbox in the
//     transaction of the read model's writes (postgres.Inbox, or
//     eventbus.MemoryInbox in memory), and runs the handlers in a Do of
//     the projection's Store that joins that transaction.
//
// With PostgreSQL, a handler that writes a row or two per event queues
// them with postgres.QueueExec: the batch's statements then go to the
// server in one round trip before the checkpoint (or the inbox rows)
// commit, instead of one round trip per event.
//
// # Batches and failures
//
// On the stream, a batch that fails is applied again one event at a
// time, so that the events before the failing one commit and the failing
// one is found. A failing event stops the projection there: it is
// retried with backoff ([RunnerConfig] Retry) and its error is in the
// status; when the retries run out [Runner.Run] returns an [*Error] that
// names the event, and running the projection again starts with it. A
// read model that skipped an event would be wrong without saying so, so
// the stream source never skips one: fix the handler (or the data) and
// restart.
//
// On the bus the rule of the bus applies: after the retries, the event
// goes to the dead-letter topic and the consumer goes on; the read model
// lacks the event until it is replayed from there. Use the stream when
// that is not acceptable.
//
// # Several runners
//
// Any number of runners of one projection may run, in one process or in
// several replicas: each batch's transaction locks the checkpoint and
// checks that it is still where the batch was read from, so a batch is
// applied by one runner only and the others move on. One runner does the
// work at a time; the others are standbys.
//
// # Rebuild
//
// [Runner.Rebuild] resets the projection — its OnReset handler, in one
// transaction with setting the checkpoint back to the start and marking
// it as rebuilding — and replays the stream from the start, reporting
// [Progress] (position and target, the stream's head when the rebuild
// began). Runners already running pick up the reset and help. While a
// rebuild runs, readers see the read model emptied and filling up again
// in stream order: it is not a consistent picture of the past until the
// status stops saying Rebuilding. When readers must keep an old read
// model meanwhile, build the new one beside it: a projection with a new
// name writing new tables, and switch readers when its status shows no
// lag. Rebuilds read the event store's stream only: Kafka topics may be
// compacted or expired, and the consumer groups' offsets are not reset.
//
// # Status
//
// [Runner.Status] returns the checkpoint (position, events applied since
// the reset, last error and when, rebuilding and the target) and the
// lag: in stream positions behind the head, and in time since the oldest
// event still to apply was stored. On the bus, [Projection.BusStatus]
// counts what this process applied and its last error; the lag of the
// consumer groups is Kafka's (per partition, in the group's offsets).
//
// # Metrics
//
// A [Runner] records two OpenTelemetry gauges per projection
// (dddkit.projection) through the global MeterProvider, after every
// batch, from the checkpoint and head the batch read (they cost no
// query): dddkit.projection.position, the stream position of the last
// event applied, and dddkit.projection.lag, the stream positions between
// it and the head (an upper bound of the events still to apply; 0 once
// caught up). A projection on the bus is a consumer: its figures are
// the consumer metrics of packages eventbus and kafka under its name.
package projection
