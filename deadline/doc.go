// Package deadline schedules events, and through them commands, for a
// time: a payment that times out, an unverified account that expires, a
// reminder.
//
// # Deadlines
//
// A deadline is an event published at a time under a key. [Scheduler]
// is the port:
//
//	err := sched.Schedule(ctx, "payment-timeout/"+orderID, time.Now().Add(15*time.Minute),
//		PaymentTimedOut{OrderID: orderID})
//	...
//	cancelled, err := sched.Cancel(ctx, "payment-timeout/"+orderID)
//
// Scheduling a key again replaces its deadline (the old one will not
// fire); Cancel removes it. Its adapters are the outboxes: a deadline is
// an outbox row that becomes due at a time.
//
//   - *postgres.Outbox writes the deadline in the unit of work of ctx
//     (postgres.TxFromContext): it commits or rolls back with the
//     aggregate saved, the inbox record of the event being handled, or a
//     process manager's state. It survives restarts of every process;
//     when a relay fails over, the new leader fires what became due.
//   - *outbox.Memory keeps it in memory, for the embedded mode and tests.
//
// The outbox relay publishes a deadline when it is due: it wakes at the
// next due time (not only on a notification or a poll), turns due
// deadlines into pending events at the end of the outbox's order (in
// order of due time) and publishes them like any event: on the topic of
// the event's aggregate type, at least once.
//
// # Order
//
// The fired event has the key as aggregate ID: a deadline is an
// ordering domain of its own. It never waits behind an aggregate's
// failed event, and before it is due it holds back nothing (a scheduled
// row is not yet in the outbox's order at all).
//
// # Once, and metadata
//
// Every Schedule call gives the event a new ID (a generation of the
// key). A redelivery of the fired message carries the same ID, so a
// handler with an inbox (eventbus.HandleOnce, a process manager, a
// projection) applies it once; a deadline that replaced another is a
// different event, and the replaced one never fires.
//
// The fired event carries the metadata of the context it was scheduled
// in: scheduled from an event handler, the correlation ID of the
// scheduling event, that event's ID as causation ID, and its trace
// parent. A command dispatched from the fired event (see
// process.Command) carries the correlation ID on, with the deadline's
// event ID as causation.
//
// # Scheduled commands
//
// A scheduled command is a deadline event whose handler dispatches the
// command: register the event type, and handle it with process.Command
// (one event, one command) or in a process manager (package process),
// which also cancels the deadline when what it waited for happens.
package deadline
