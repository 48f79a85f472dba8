// Package dddkitcli is the dddkit operator command: what an operator
// runs at 3 a.m. to see whether the outbox relay is running and how far
// behind it is, which events failed and why, which events the consumers
// gave up on (and which keys they hold back), how far each consumer group
// lags and how the projections are doing, and to act on it (retry, skip,
// replay, rebuild, migrate).
// Command dddkit (cmd/dddkit) is [Command] with no service code:
//
//	go run github.com/dddkit/dddkit/cmd/dddkit doctor
//
// # Commands
//
//	outbox stats | list [--status S] | show SEQ | retry SEQ... | retry --all-failed | skip SEQ... --reason WHY [--by WHO]
//	deadletters list [--handler H] | show HANDLER KEY | replay HANDLER KEY | skip HANDLER KEY --reason WHY [--by WHO]
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
// A consumer that gives up on an event records it as the dead letter of
// its key (aggregate) for its handler in the eventbus.DeadLetters store,
// and parks the key's later events behind it, in order (see "Dead
// letters" in package eventbus). The commands read that store, the
// PostgreSQL one (postgres.NewDeadLetters, tables dddkit_dead_letters and
// dddkit_parked in the schema and names --schema and --table give), so a
// service's router must use it: RouterConfig.DeadLetters. A dead letter
// is named by its handler and key, the first two columns of `deadletters
// list`; `deadletters show HANDLER KEY` adds the dead event's headers and
// payload and the parked events in the order they will be handled.
//
// `deadletters replay HANDLER KEY` (eventbus.ReplayDeadLetter), once the
// cause is fixed, makes the consumer handle the dead event again and then
// the parked ones; `deadletters skip HANDLER KEY --reason WHY`
// (eventbus.SkipDeadLetter) makes it drop the dead event and handle the
// parked ones. Both record the release in the store and publish a release
// message to the key's partition through Kafka (KAFKA_BROKERS), so the
// running consumer releases the key in order behind what it has parked;
// the dead letter stays listed, with its release, until the consumer has
// done it. The store has no column for who skipped and why: the command
// prints them (and --json returns them) for the operator's records.
//
// The copies of dead letters on the dead-letter topic are for tools that
// watch topics; republishing one by hand would only park it again.
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
// --max-pending-age; no consumer holds keys back behind dead letters;
// Kafka is reachable; the --topic topics exist with
// their partition counts; the consumer groups (--group, or all) lag at
// most --max-lag records. Checks whose service is not configured are
// skipped.
package dddkitcli
