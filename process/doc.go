// Package process coordinates what happens across aggregates and over
// time: process managers (sagas, in Axon's words) that follow events of
// several types and topics, keep a state per correlation key, dispatch
// commands, schedule deadlines and end; and [Command], the stateless
// case of one event leading to one command.
//
// # Process managers
//
// A [Manager] is created on an eventbus.Router with a [Store] and
// reacts to the event types registered with [StartOn] (events that may
// start an instance) and [On] (events of a running instance):
//
//	pm, err := process.New[Payment](router, "payment", store, &process.Config{Bus: bus, Scheduler: outbox})
//	err = process.StartOn(pm, func(e OrderPlaced, _ aggregate.Envelope) string { return e.OrderID },
//		func(ctx context.Context, s *Payment, e OrderPlaced, env aggregate.Envelope, pc *process.Context) error {
//			s.Amount = e.Amount
//			return pc.Schedule(ctx, "timeout", env.OccurredAt.Add(15*time.Minute), PaymentTimedOut{OrderID: e.OrderID})
//		})
//	err = process.On(pm, func(e PaymentReceived, _ aggregate.Envelope) string { return e.OrderID },
//		func(ctx context.Context, s *Payment, e PaymentReceived, _ aggregate.Envelope, pc *process.Context) error {
//			if _, err := pc.Cancel(ctx, "timeout"); err != nil {
//				return err
//			}
//			pc.End()
//			return nil
//		})
//	err = process.On(pm, func(e PaymentTimedOut, _ aggregate.Envelope) string { return e.OrderID },
//		func(ctx context.Context, s *Payment, e PaymentTimedOut, _ aggregate.Envelope, pc *process.Context) error {
//			pc.End()
//			return process.Dispatch(ctx, pc, CancelOrder{OrderID: e.OrderID})
//		})
//
// Each event type has one handler per process. The key function maps an
// event to its instance; the handler changes the state in place and acts
// through its [Context]: [Dispatch] a command, [Context.Schedule] and
// [Context.Cancel] a deadline of the instance (by a name; the key of the
// deadline is process/key/name), [Context.End] the instance.
//
// The manager registers one router handler per topic its events come
// from, named name@topic, so the events of one topic reach it in the
// order of the topic (per key with Kafka), and instances are locked by
// the Store against the other topics' handlers.
//
// # Transactions and once
//
// Each event is applied through [Store.Apply]: the record that the
// process applied the event (an inbox), the instance's state, and what
// the handler did with its context commit in one transaction. With the
// PostgreSQL store (postgres.NewProcessStore) that is a unit of work: the
// repositories of a dispatched command, deadlines scheduled on the
// *postgres.Outbox and postgres.TxFromContext all join it. So a crash or
// a failing handler never leaves the state changed without the record (or
// the reverse), a deadline scheduled without the state that expects it,
// or a command's effects without either; and a redelivered event is
// recognised and not applied twice. [MemoryStore] gives the same
// once-per-event behaviour in memory, without a transaction.
//
// The state S is stored as JSON: exported fields, or MarshalJSON and
// UnmarshalJSON.
//
// # Ending
//
// An instance that called End keeps its final state, marked ended. Every
// later event of its key is acknowledged and ignored (a debug log line),
// also an event of a type registered with StartOn: a key does not start
// twice. A deadline it did not cancel still fires and is ignored the
// same way. An event for a key without an instance, of a type registered
// with On, is ignored too.
//
// # Commands
//
// [Command] is the stateless process: every event of a type dispatches
// one command, with the event's correlation ID and the event as
// causation. It replaces eventbus.Saga, and it is how a scheduled command
// is made: schedule an event (package deadline), turn it into the
// command with Command.
package process
