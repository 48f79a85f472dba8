// Package outbox is the transactional outbox's engine: the [Source] port
// that an outbox store implements, the [Relay] that publishes a Source's
// events through any watermill
// [github.com/ThreeDotsLabs/watermill/message.Publisher], and [Memory], the
// in-memory Source. It imports no database driver and no Kafka client.
//
// The PostgreSQL Source is [github.com/dddkit/dddkit/postgres.Outbox]: its
// events are written in the unit of work that saves the aggregate, so an
// event is published if and only if that transaction committed, and at
// least once (a relay that crashes between the broker's acknowledgement and
// recording it publishes the event again; consumers drop duplicates by
// event ID, as the eventbus inbox does). The production publisher is the
// one of a [github.com/dddkit/dddkit/kafka.Client], the process's one
// producer.
//
// # Sources
//
// A [Source] holds events in the order they were written and hands them
// to the relay: [Source.Fetch] returns pending events in sequence order,
// leaving out every event of an aggregate whose earlier event failed or
// waits for a retry, and, beside the batches the relay has in flight (a
// [SeqRange]), the events in them and every event of their aggregates;
// [Source.MarkPublished] and [Source.MarkAttempts]
// record the outcome; [Source.Stats] counts what is pending, retrying and
// failed. [Source.Lead] makes one relay at a time the leader of a Source,
// also across processes, and wakes it when events were written. Writing is
// not part of the port: each Source has its own write call
// ([Memory.Append], postgres.Outbox.Write), which encodes the events with
// [Encode] so that every Source refuses the same events
// ([ErrInvalidEvent]: a field missing, or a type the registry does not
// know).
//
// Package [github.com/dddkit/dddkit/outbox/outboxtest] is the suite every
// Source passes; run it against a Source of your own.
//
// # The relay
//
// [NewRelay] takes the Source, the publisher and the service's one
// [github.com/dddkit/dddkit/eventbus.Registry], whose topic rule names each
// event's topic (the aggregate type followed by ".events" by default): the
// same rule the consumers subscribe by. [Relay.Run] relays until its
// context ends; [Relay.Flush] publishes what is due and returns, for tests
// and the embedded mode.
//
// The relay reads up to [RelayConfig].BatchSize events at a time and
// publishes each topic's share of a batch in one Publish call, or, when
// the batch holds several events of one aggregate, in one call per rank
// (every aggregate's first event, then every aggregate's second, once the
// first are acknowledged): a publisher call never carries two events of
// one aggregate, because a producer may fail one message and still write
// later ones it was handed with it. After a full batch of several events
// per aggregate, the next reads BatchSize times as many (at most 10,000),
// so that its calls still carry about BatchSize events each. While there
// is a backlog (the last batch was full) it reads and sends the next
// batch without waiting for the acknowledgements of the earlier ones, up
// to [RelayConfig].MaxInFlight batches, and records each batch as soon as
// its own acknowledgements are in; batches in flight together never share
// an aggregate, so no event overtakes an earlier one of its aggregate, or
// the retry of one that failed. Every
// message is the event in dddkit's one wire contract, the one the
// consumers of package eventbus read: a CloudEvent in the binary mode of
// the Kafka binding, with the event ID as its UUID, the payload bytes as
// they were encoded at write time, the registry's source
// ([github.com/dddkit/dddkit/eventbus.RegistryConfig].Source, required by
// NewRelay) and the headers named by
// [github.com/dddkit/dddkit/eventbus.HeaderEventID] and the other
// eventbus Header constants (event name and schema version, aggregate
// type, ID and version, occurred-at, correlation and causation IDs, trace
// context, one header per metadata value). A publisher that implements
// [ContextPublisher] (the kafka package's does) can be interrupted when
// Run stops. The kafka package's publisher also takes the events
// themselves and builds their Kafka records without the watermill
// message in between: the same records, at a lower cost per event.
//
// A Source that notifies (both Memory and the PostgreSQL outbox do) wakes
// the leading relay as soon as events are written; the relay also polls
// every [RelayConfig].PollInterval, for due retries. When Run's context
// ends, the batches in flight finish (for up to
// [RelayConfig].ShutdownTimeout) and are recorded before Run returns.
//
// # Several relays
//
// Every replica of a service may run a relay on the same outbox. One leads
// and publishes; the others wait in [Source.Lead] and take over when the
// leader stops or its process dies. A single leader keeps the order per
// aggregate without coordination: one relay reads the outbox in sequence
// order, and no rebalancing can hand an aggregate to a second relay while
// the first still has its events in flight. With a batching publisher one
// relay moves tens of thousands of events per second. [Relay.IsLeader]
// and [Hooks].OnLeader tell which relay leads.
//
// # Failures, retries and order
//
// When a batch's Publish call fails, the relay isolates the failure: it
// publishes aggregate by aggregate, and inside a failing aggregate event by
// event, so the event that fails is found and every other aggregate's
// events go out. The failing event gets an attempt recorded and waits
// [RelayConfig].Retry (a [github.com/dddkit/dddkit/retry.Policy]); after
// its MaxAttempts it is failed. A waiting or failed event holds back the
// later events of its own aggregate, on every topic, and nothing else,
// until an operator retries it ([Memory.RetryFailed],
// postgres.Outbox.Retry) or discards it (postgres.Outbox.Discard). When several aggregates in a row
// fail with none succeeding, the relay takes it for an outage of the
// publisher and backs off instead of trying every aggregate.
//
// Order is kept per aggregate because the writers of one aggregate are
// serialised by its version check (the repository's optimistic
// concurrency), so a later event always has a higher sequence number; the
// relay publishes in sequence order, hands an aggregate's later event to
// the publisher only once the earlier one is acknowledged, and re-sends
// from the first unacknowledged event. After a crash or a failed batch a consumer may see
// an event again, but never an event of an aggregate before an earlier one
// it has not seen yet.
//
// [Hooks] receive every publish, failed attempt, change of leader and
// retried error, for metrics; [RelayConfig].Logger receives warnings.
//
// # Deadlines
//
// An outbox also holds deadlines: events to publish at a time, under a
// key ([Memory.Schedule] and [Memory.Cancel], postgres.Outbox.Schedule
// and Cancel; the port is package deadline's Scheduler). A deadline is a
// row with status [StatusScheduled], a due time and a key unique among
// scheduled rows: scheduling the key again replaces it, cancelling
// removes it. It is not in the relay's order yet, so it holds back
// nothing. When a relay finds it due, [Source.Fetch] first makes it
// pending at the end of the order (a new sequence number; several due
// ones in order of due time), and from then on it is published like any
// event and can no longer be cancelled. The relay wakes at
// [Source.NextDue], so a deadline fires on time without polling, and a
// relay that takes over fires what became due meanwhile. The event it
// publishes is built by [DeadlineEnvelope].
//
// # Metrics
//
// A [Relay] records OpenTelemetry metrics through the global
// MeterProvider (otel.SetMeterProvider; nothing is recorded, and no
// clock is read, until an application installs an SDK). Counters and
// histograms, labelled with the topic (messaging.destination.name):
//
//   - dddkit.outbox.relay.published {event}: events the publisher
//     acknowledged;
//   - dddkit.outbox.relay.attempt_failures {event}: failed attempts, with
//     dddkit.outcome "retry" (tried again later) or "failed" (out of
//     attempts: the event is failed and holds its aggregate back);
//   - dddkit.outbox.relay.batch.size {event}: events per successful
//     publish call;
//   - dddkit.outbox.relay.publish.duration (s): how long successful
//     publish calls took, until the broker acknowledged every event.
//
// Gauges of the outbox, without labels, as read by [Source].Stats:
// dddkit.outbox.pending, dddkit.outbox.retrying, dddkit.outbox.failed,
// dddkit.outbox.scheduled {event} and dddkit.outbox.oldest_pending.age
// (s); and dddkit.outbox.relay.leader {relay}, the relays of the process
// that lead (1 or 0 with one relay per process). A running relay reads
// Stats once when Run starts and then every [RelayConfig].StatsInterval
// (default 15s) in the background, leader or not, and the gauges report
// that reading: a metrics scrape never queries the database, however
// often it comes. Every replica reports the same outbox: aggregate the
// gauges across replicas with max, the leader series with sum. The
// gauges exist only while Run runs (not for [Relay.Flush]).
//
// # In memory
//
// [Memory] is the Source for unit tests and for services running without a
// database (the example system's embedded mode): the in-memory repository
// appends to it when its save commits, and a Relay publishes from it with
// the same rules as from PostgreSQL. Published events are dropped;
// [Memory.Pending], [Memory.Failed] and [Memory.RetryFailed] are the
// operator's view. Note that watermill's GoChannel keeps order only with
// BlockPublishUntilSubscriberAck set; without it, it delivers each message
// on its own goroutine.
//
// # Tracing
//
// With an OpenTelemetry tracer provider installed, a write is a span
// ("outbox write"), and every publisher call of the relay is a producer
// span ("send TOPIC", with the batch size) linked to the trace of each
// event in it: an event's own trace context (the span that saved it,
// [aggregate.Metadata] TraceParent) goes out unchanged in its message,
// so that its consumers continue the trace of the request that recorded
// it, not the relay's.
package outbox
