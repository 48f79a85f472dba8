// Package dddkitcli is the dddkit operator command: what an operator
// runs at 3 a.m. to see whether the outbox relay is running and how far
// behind it is, which events failed and why, what ended in a dead-letter
// topic, how far each consumer group lags and how the projections are
// doing, and to act on it (retry, skip, replay, rebuild, migrate).
// Command dddkit (cmd/dddkit) is [Command] with no service code:
//
//	go run github.com/dddkit/dddkit/cmd/dddkit doctor
//
// # Commands
//
//	outbox stats | list [--status S] | show SEQ | retry SEQ... | retry --all-failed | skip SEQ... --reason WHY [--by WHO]
//	deadletters list | show ID | replay ID... | replay --all   [--topic T]...
//	consumers lag [--group G]...
//	projections status | rebuild NAME
//	migrate status | up | sql [--from V]
//	doctor [--topic NAME[:PARTITIONS]]... [--group G]... [--max-pending-age D] [--max-lag N]
//
// Output is text for people, or JSON with --json for scripts. The exit
// code is 0 when the command did what it was asked (and doctor found
// nothing wrong), 1 when it failed or doctor found a problem, 2 for a
// wrong command line.
//
// # Configuration
//
// DATABASE_URL (--database-url) is the service's PostgreSQL, KAFKA_BROKERS
// (--brokers) its Kafka. --schema (DDDKIT_SCHEMA) and --table KIND=NAME
// name the dddkit tables as the service's postgres.Tables does; give the
// command the same names.
//
// # The outbox
//
// `outbox skip` gives up on failed events (postgres.Outbox.Discard): they
// stay in the outbox with status discarded, who skipped them (--by, or
// $USER) and why (--reason), and the later events of their aggregates
// flow again. `outbox retry` puts them back to pending.
//
// # Dead letters
//
// A router sends a message it gives up on to its dead-letter topic
// (eventbus.DefaultDeadLetterTopic unless configured) with the headers
// eventbus.HeaderDeadLetterTopic (where it came from),
// eventbus.HeaderDeadLetterHandler and eventbus.HeaderDeadLetterReason.
// A dead letter's ID is TOPIC/PARTITION/OFFSET. `deadletters replay`
// produces it to the topic it came from with the same key, value and
// headers (without the three dead-letter ones) through the murmur2
// partitioner the relay uses, so it reaches the same partition, and
// every consumer group of that topic sees it again: handlers that use an
// inbox (eventbus.HandleOnce) skip it where they had applied it. `replay
// --all` replays what an earlier `replay --all` did not, keeping its
// place as the committed offsets of the consumer group
// [DefaultReplayGroup].
//
// # Projections
//
// `projections status` reads each projection's checkpoint and the event
// store's head. A rebuild needs the projection's OnReset and handlers,
// which a generic binary does not have, so cmd/dddkit refuses it; a
// service links this package into a command of its own with its runners,
// and `projections rebuild NAME` then runs projection.Runner.Rebuild
// (the service's running runners notice the reset and help):
//
//	func main() {
//		// ... build the service's projection runners as the service does
//		cmd := &dddkitcli.Command{Projections: []*projection.Runner{activity}}
//		os.Exit(cmd.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
//	}
//
// # Doctor
//
// `doctor` checks, one line each, OK or what to do: the schema is
// migrated; no outbox event failed for good; a relay holds the outbox's
// leader lock (pg_locks); the oldest pending event is younger than
// --max-pending-age; Kafka is reachable; the --topic topics exist with
// their partition counts; the consumer groups (--group, or all) lag at
// most --max-lag records. Checks whose service is not configured are
// skipped.
package dddkitcli
