// Package kafka holds every Kafka adapter of dddkit: one [Config], one
// [Client] that owns the process's one producer, the consumers (watermill
// subscribers for an [eventbus.Router], and the [BatchConsumer]) and the
// mapping of dddkit's messages onto Kafka records. It is built on IBM's
// sarama and, for the subscribers, on watermill-kafka. The core packages
// (outbox, eventbus) know nothing of Kafka; they take a watermill
// publisher or an [eventbus.Transport], which a Client is.
//
// # One client per process
//
// A service builds one Client at start-up and closes it last:
//
//	client, err := kafka.NewClient(&kafka.Config{Brokers: []string{"kafka-1:9092"}, ClientID: "orders"})
//	defer client.Close()
//
//	relay, err := outbox.NewRelay(box, client.Publisher(), reg, nil) // events saved with aggregates
//	pub, err := eventbus.NewPublisher(client.Publisher(), reg)       // events published directly
//	router, err := eventbus.NewRouter(client, reg, nil)              // consumers; dead letters
//
// The relay, the publisher and the router's dead-letter path all publish
// through the same producer ([Client.Publisher]): a process opens one
// producer, with one configuration, however many of them it runs.
//
// # Configuration
//
// [Config] names the brokers and, with defaults for everything else, the
// client ID, the protocol version ([DefaultVersion]), where a new consumer
// group starts, how often offsets are committed and the logger. For what
// the fields do not cover (TLS, SASL, compression, timeouts),
// [Config.Configure] edits the sarama configuration directly; it cannot
// turn off what the delivery guarantees rest on: acks from all in-sync
// replicas and the idempotent producer.
//
// # Topics and partitions
//
// Topics are provisioned, not created on first use: [Client.Provision]
// creates the topics a service names ([TopicSpec]: partitions,
// replication factor, configuration such as retention.ms or
// min.insync.replicas; defaults in [Config.Topics], [DefaultPartitions]
// partitions and the brokers' replication factor), checks the partition
// count of those that exist ([ErrTopicMismatch]) and waits until their
// metadata is visible. It is idempotent and safe to run from every
// replica at start-up; the topics of a service are those of its
// registry and router ([eventbus.Registry.Topics],
// [eventbus.Router.Topics]):
//
//	var topics []kafka.TopicSpec
//	for _, name := range append(reg.Topics(), router.Topics()...) {
//		topics = append(topics, kafka.TopicSpec{Name: name})
//	}
//	err := client.Provision(ctx, topics...)
//
// A Client never has a topic created by asking for it (its metadata
// requests do not allow auto-creation), and the SubscribeInitialize of
// its subscribers provisions the topic with the client's defaults.
//
// A record's partition is chosen from its key exactly as Java's producer
// chooses it: (murmur2(key) & 0x7fffffff) % partitions, so that every
// producer of the same keys, in any language, agrees on where a key's
// records are and in what order. See [Config.Configure] for the opt-out
// and why it must be chosen before the first production topic.
//
// # The producer
//
// The producer sends all messages of one Publish call together and waits
// for all their acknowledgements: one round trip per batch instead of one
// per message, which is what lets the outbox relay keep up with a busy
// table. It is sarama's asynchronous producer with acks=all, idempotence
// and one request in flight per broker, so retries neither duplicate nor
// reorder the messages of a partition. Its Publish returns only when
// every message of the call is acknowledged.
//
// # On the wire
//
// A dddkit message (see [eventbus.Registry.Encode]) becomes a Kafka record
// in the binary content mode of the CloudEvents Kafka protocol binding:
//
//   - the key is the aggregate ID ([eventbus.HeaderAggregateID], ce_subject),
//     so the events of one aggregate share a partition and keep their
//     order;
//   - the value is the payload exactly as the codec encoded it (the
//     PostgreSQL outbox stores those bytes, nothing re-renders them);
//   - the timestamp is the event's occurred-at time (ce_time), so Kafka
//     tools and stream processors see event time. An event that occurred
//     in the future by this process's clock is stamped with the clock
//     instead: brokers refuse records more than
//     log.message.timestamp.after.max.ms ahead (one hour by default).
//     Time-based retention counts from the record timestamp, so an event
//     relayed long after it occurred leaves the topic sooner than
//     retention.ms after its publication; size the retention for the
//     longest outage the relay must catch up on;
//   - the headers are the message metadata: the ce_* attributes,
//     content-type and the x-meta-* values. The event ID travels once,
//     as ce_id (no "_watermill_message_uuid" header); a message that is
//     not an event gets its UUID as ce_id.
//
// Consumers read records back the same way: the message UUID is ce_id,
// or for records written before v0.2.0 event_id or
// "_watermill_message_uuid" (read until v0.3.0). docs/wire-contract.md
// shows a record as Kafka's console consumer prints it.
//
// # Consumers
//
// A Client is an [eventbus.Transport]: [Client.Subscriber] returns a
// watermill-kafka subscriber that consumes as one consumer group, and a
// [eventbus.Router] asks for one per handler name. Offsets are committed
// for acknowledged messages every [Config.CommitInterval]; after a crash
// up to one interval of events is delivered again, which the inbox makes
// harmless.
//
// # Batching consumer
//
// [eventbus.HandleOnce] costs one PostgreSQL transaction per event, and a
// Kafka partition's next event waits for it: a consumer with an inbox
// takes a few thousand events per second, where decoding alone would
// allow tens of thousands. A [BatchConsumer] applies a partition's events
// in batches instead: it gathers up to MaxBatch messages (or what arrives
// within MaxWait, see [eventbus.BatchConfig]), and hands them to the
// inbox's ProcessBatch: with the PostgreSQL inbox (postgres.NewInbox) it
// inserts their inbox rows with one statement in one transaction, runs the
// handler for the events whose rows are new, in offset order, in that
// transaction, and commits; then the consumer marks the batch's offsets:
//
//	inbox, err := postgres.NewInbox(pool, nil)
//	c, err := kafka.NewBatchConsumer(client, reg, inbox, "ledger",
//		func(ctx context.Context, e OrderPlaced, env aggregate.Envelope) error {
//			tx, _ := postgres.TxFromContext(ctx) // the batch's transaction
//			_, err := tx.Exec(ctx, `INSERT INTO ledger ...`, env.ID, e.Amount)
//			return err
//		}, nil)
//	err = c.Run(ctx)
//
// It keeps the guarantees of HandleOnce. Effects happen once per event (the
// inbox rows commit with them; a duplicate, in the batch or later, does
// not run the handler). The events of one key are applied in order. When
// anything in a batch fails — the handler returns an error or panics, the
// database is away — the transaction rolls back and the batch is handled
// again one event at a time exactly as HandleOnce would: own transaction,
// bounded retries with backoff, [eventbus.ErrUnavailable] waited out, and
// the dead-letter topic for an event that keeps failing; messages that
// cannot be decoded go to the dead-letter topic without holding up their
// batch. A stopped or rebalanced consumer continues at the committed
// offsets.
//
// Use it for a handler with an inbox that must keep up with a busy topic
// (projections, ledgers, imports). What it costs: the handler of one
// event shares a transaction with up to MaxBatch-1 others, so one event's
// failure makes the others run again (only committed runs leave effects);
// a batch waits up to MaxWait for its messages; and it is a consumer of
// its own next to the [eventbus.Router] (one event type, started with
// [BatchConsumer.Run]). The batching itself is an
// [eventbus.BatchProcessor]; this package feeds it from sarama's consumer
// group.
//
// # Metrics
//
// Besides the consumer metrics of package eventbus, a [BatchConsumer]
// (and so a [ProjectionConsumer]) records the OpenTelemetry gauge
// dddkit.consumer.lag {message} per consumer group, topic and partition
// (messaging.destination.partition.id): the messages of the partition
// it has not handled yet, the batch it takes included, from the high
// watermark that the fetch responses carry. Measuring it asks the
// broker nothing.
//
// # Tests
//
// The package passes the eventbus transport suite (package eventbustest)
// and watermill's universal Pub/Sub suite (pubsub/tests.TestPubSub, with
// the features Kafka has: consumer groups, persistence, at-least-once
// delivery, order per key) against a real broker; its tests, like every
// Kafka test of dddkit, run when TEST_KAFKA_BROKERS names one (make test
// starts one).
package kafka
