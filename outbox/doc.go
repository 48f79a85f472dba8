// Package outbox is a transactional outbox on PostgreSQL: domain events are
// written in the same transaction as the aggregate that recorded them, and
// a relay publishes them afterwards through any watermill
// [github.com/ThreeDotsLabs/watermill/message.Publisher] — Kafka in
// production, an in-memory GoChannel in tests.
//
// # Where it sits
//
//	command handler → aggregate method → events
//	  → repository: aggregate row + Store.Write, ONE transaction
//	  → Relay: LISTEN/NOTIFY wake-up → publish in order → mark published
//	  → Kafka (key = aggregate ID) → consumers
//
// An event is published if and only if the transaction that wrote it
// committed: a rolled-back transaction leaves no row, a committed one
// leaves a row that stays until the publisher acknowledged it. Delivery is
// at least once: a relay that crashes between the acknowledgement and
// marking the row publishes it again. Consumers drop duplicates by event ID
// (the message UUID); the eventbus inbox does that.
//
// # Installing the schema
//
// [Migrate] creates the outbox table ([Config] names its schema and table;
// default "dddkit_outbox" in the search_path's schema) and upgrades it
// later. It is versioned (the applied steps are recorded in
// Table+"_migrations", see [Migrations]) and idempotent, and it takes a
// transaction-scoped advisory lock, so every replica may run it at start-up.
//
// Each row holds a sequence number (bigserial, the publishing order), the
// event ID (unique), aggregate type, ID and version, event name, the
// payload as JSON (jsonb), the metadata as the headers it will travel with
// (jsonb), occurred-at, created-at, status (pending, published, failed),
// attempts, the last error, the next attempt's time and published-at. A
// partial index holds the pending rows by sequence, another the few rows
// that block their aggregate. A statement-level trigger sends a NOTIFY on
// every insert, so relays wake at commit — also for rows written by other
// programs.
//
// # Writing events
//
// [Store.Write] inserts events inside the caller's transaction in one
// statement (a multi-row VALUES for up to 32 events, arrays through unnest
// beyond), encoding each payload with encoding/json. The repository
// package calls it from Save; code with its own transaction may call it
// directly:
//
//	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
//		// ... change state in tx ...
//		return store.Write(ctx, tx, user.Changes()...)
//	})
//
// # Relaying
//
// A [Relay] ([NewRelay], [Relay.Run]) reads pending rows in sequence order,
// in batches of up to [RelayConfig].BatchSize, turns each into a watermill
// message and publishes each topic's share of a batch in one Publish call.
// Every message carries the event ID as its UUID and the headers
// [HeaderEventID], [HeaderEventName], [HeaderAggregateType],
// [HeaderAggregateID], [HeaderAggregateVersion], [HeaderOccurredAt],
// [HeaderCorrelationID], [HeaderCausationID], [HeaderTraceParent] (when
// set), [HeaderContentType], [HeaderEventVersion] (the payload's schema
// version) and one [HeaderMetaPrefix] header per metadata value. The topic is [DefaultTopic] of the aggregate type ("user" →
// "user.events") unless [RelayConfig].Topic says otherwise.
//
// For Kafka use the publisher of a Client of package
// [github.com/dddkit/dddkit/kafka] (the process's one producer): it hands a
// whole batch to sarama's idempotent producer (acks=all, one request in
// flight) and waits for all acknowledgements, one round trip per batch
// instead of one per message; its messages are keyed by aggregate ID, so
// an aggregate's events share a partition and keep their order.
//
// The leader LISTENs on the table's channel and wakes within milliseconds
// of a commit; it also polls every [RelayConfig].PollInterval, for missed
// notifications and due retries. Run returns when its context is done,
// after finishing the batch in flight (or abandoning it after
// [RelayConfig].ShutdownTimeout; its rows stay pending).
//
// # Several relays: a leader lock
//
// Every replica of a service may run a relay against the same table. They
// elect a leader with a session-level advisory lock (pg_try_advisory_lock)
// held on a dedicated connection that also carries the LISTEN; the others
// retry the lock every [RelayConfig].LeaderPollInterval. When the leader's
// process dies or its connection breaks, PostgreSQL ends the session and
// frees the lock, and a standby takes over within that interval. The old
// leader notices the broken connection and stops.
//
// We chose a leader over partitioning the aggregates among relays because
// order per aggregate then needs no coordination beyond the lock: one
// process reads the table in sequence order, and no rebalancing can hand an
// aggregate to a second relay while the first still has its events in
// flight. One relay with a batching publisher moves tens of thousands of
// events per second, more than the inserts one PostgreSQL primary takes
// into one table, so partitions would add failure modes without adding
// needed throughput. Standbys cost one idle connection each.
//
// # Failures, retries and order
//
// When a batch's Publish call fails, the relay isolates the failure: it
// publishes aggregate by aggregate, and inside a failing aggregate event by
// event, so the event that fails is found and every other aggregate's
// events go out. The failing event gets an attempt recorded (attempts,
// last error, next attempt after the delay of [RelayConfig].Retry, a
// [retry.Policy]); after its MaxAttempts it is marked failed. A waiting or failed event
// blocks the later events of its own aggregate — they are never published
// before it — and nothing else. When several aggregates in a row fail with
// none succeeding, the relay takes it for an outage of the publisher and
// backs off instead of trying every aggregate.
//
// Order is kept per aggregate because writers of one aggregate are
// serialised by its version check (the repository's optimistic
// concurrency; code calling [Store.Write] directly must serialise the
// writes of one aggregate likewise), so a later event always has a higher
// sequence number and commits later; the relay publishes in sequence
// order, one batch at a time, and re-sends from the first unacknowledged
// event. After a crash or a failed batch a consumer may see an event again,
// but never an event before one of its aggregate that it has not seen yet.
// The batching publisher refuses a whole call up front when a message is
// larger than the producer's limit, so a poison message does not leave
// later messages of its aggregate written before it.
//
// # Operations
//
// Published rows are deleted at once by default; a positive
// [RelayConfig].Retention keeps them for that long (the leader deletes
// expired rows every [RelayConfig].CleanupInterval), a negative one
// forever. [Admin] is the operator's API: [Admin.Stats] (pending,
// retrying, failed, age of the oldest pending row), [Admin.Failed] and
// [Admin.List], [Admin.Retry] and [Admin.RetryAllFailed] (back to pending,
// published next and in order), [Admin.Discard] (drop a failed event and
// unblock its aggregate) and [Admin.DeletePublished]. [Hooks] receive
// every publish, failed attempt, leadership change and retried error, for
// metrics; [RelayConfig].Logger gets log lines.
//
// # In memory
//
// [Memory] is the outbox for unit tests and for services running without
// a database: the in-memory repository calls [Memory.Append] on commit, and
// a [MemoryRelay] publishes with the same rules (order, blocking, retries,
// failed after Retry.MaxAttempts). [MemoryRelay.Flush] publishes synchronously,
// which makes tests deterministic. Note that watermill's GoChannel keeps
// order only with BlockPublishUntilSubscriberAck set; without it, it
// delivers each message on its own goroutine.
package outbox
