// Package kafka holds every Kafka adapter of dddkit: one [Config], one
// [Client] that owns the process's one producer, the consumers of an
// [eventbus.Router] (watermill subscribers, and batches of a partition
// for the handlers with an inbox) and the
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
// A produce request leaves as soon as the one before it on its broker
// connection is answered, with every message handed over meanwhile: the
// producer does not linger (sarama's Producer.Flush.Frequency, Java's
// linger.ms, 5 ms there by default). The outbox relay publishes an
// aggregate's events one acknowledged call after another, so a linger
// would be paid once per event of an aggregate: on this project's test
// machine one aggregate's backlog left at about 400 events/s with a
// linger of 2 ms and at 4,800–5,100 without, and a backlog of many
// aggregates as fast either way (BENCHMARKS.md, nineteenth pass).
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
// A Client is an [eventbus.Transport] and an [eventbus.BatchTransport]:
// an [eventbus.Router] on it consumes each handler name as one consumer
// group. Handlers registered with [eventbus.Handle] get a watermill-kafka
// subscriber ([Client.Subscriber]) and take one message at a time.
// Handlers registered with [eventbus.HandleOnce] are consumed below
// watermill, through sarama's consumer group ([Client.ConsumeBatches]),
// in batches of a partition's messages. Offsets are committed for handled
// messages every [Config.CommitInterval]; after a crash up to one
// interval of events is delivered again, which the inbox makes harmless.
//
// # Batching consumer
//
// [eventbus.HandleOnce] with one transaction per event would take a few
// thousand events per second, where decoding alone allows tens of
// thousands. So a Router on a Client applies a HandleOnce handler's
// events in batches: [Client.ConsumeBatches] gathers up to
// [eventbus.RouterConfig] MaxBatch messages of one partition that have
// arrived (and what arrives within MaxWait when it is set), the router
// hands them to the inbox's ProcessBatch: with the PostgreSQL inbox (postgres.NewInbox) it inserts
// their inbox rows with one statement in one transaction, runs the
// handler for the events whose rows are new, in offset order, in that
// transaction, and commits; then the batch's offsets are marked:
//
//	inbox, err := postgres.NewInbox(pool, nil)
//	router, err := eventbus.NewRouter(client, reg, nil)
//	err = eventbus.HandleOnce(router, "ledger", inbox,
//		func(ctx context.Context, e OrderPlaced, env aggregate.Envelope) error {
//			// queued: sent in one round trip with the batch's commit
//			return postgres.QueueExec(ctx, `INSERT INTO ledger ...`, env.ID, e.Amount)
//		})
//	err = router.Run(ctx)
//
// It keeps the guarantees of one event at a time: effects once per event,
// the events of one key in order, bounded retries, [eventbus.ErrUnavailable]
// waited out, and a dead letter for an event that keeps failing, which
// parks the later events of its key until it is replayed or skipped
// (give [eventbus.RouterConfig] DeadLetters the PostgreSQL store; see
// "Batches" and "Dead letters" in package eventbus). A stopped or rebalanced consumer
// continues at the committed offsets. The handler of one event shares a
// transaction with up to MaxBatch-1 others, so one event's failure makes
// the others run again (only committed runs leave effects). A statement
// run with
// postgres.TxFromContext(ctx) costs a round trip per event; one queued
// with postgres.QueueExec does not.
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
