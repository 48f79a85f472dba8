package postgres

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The outbox and the event store wake their readers (the relay, event
// stream subscribers) with a NOTIFY per inserting statement, sent by a
// trigger when the transaction commits. A NOTIFY in a transaction holds
// PostgreSQL's notification lock from before its commit until after it,
// so the commits of all transactions that notify run one at a time, each
// waiting for its own WAL flush: group commit is lost (measured with
// pgbench, fsync on, 16 clients: 3,774 commits/s without the trigger, 889
// with it).
//
// A write that commits its own transaction on a pool therefore tells the
// triggers to leave its transaction alone (notifySetting) and, once it
// committed, has the channels it wrote to notified by a notifier: one
// NOTIFY at a time per pool and channel, from a connection of the pool,
// the commits that happen meanwhile sharing the next one. Such writes are
// a repository's or event store's save on its own (set in its statement,
// or first in its batch), Outbox.Write on its own (first in its batch),
// and the writes of a unit of work on a pool: each of its saves and
// Outbox.Writes sets the setting the same way, so that a unit that
// writes nothing to the outbox or the event store (an inbox's batch
// whose handlers only write their own tables) runs no statement for it.
// Every other write (anything on a connection or in a caller's
// transaction) is notified by the trigger, as before.
//
// When the Outbox's own relay, in this process, leads every shard (one
// relay, the usual case), the notifier wakes it directly and sends no
// NOTIFY: no other relay may read the rows. Event store readers are
// always notified through PostgreSQL.
//
// A process that dies between the commit and its notification leaves
// the rows to the readers' next poll (RelayConfig.PollInterval).
const (
	notifySetting     = "dddkit.notify"
	notifyAfterCommit = "after_commit"
	// setNotifyAfterCommit sets notifySetting for the transaction.
	setNotifyAfterCommit = "SELECT set_config('" + notifySetting + "', '" + notifyAfterCommit + "', true)"
	// notifyTimeout bounds one notification.
	notifyTimeout = 5 * time.Second
)

// notifiesAfterCommit reports whether a write to the outbox or the event
// store on q sets notifySetting itself (in its statement or its batch)
// and is notified after commit: on a pool, a write on its own (inTx
// false); in a transaction, one whose q is the transaction of ctx's unit
// of work, when that unit notifies after commit.
func notifiesAfterCommit(ctx context.Context, q DB, inTx bool) bool {
	if !inTx {
		return poolOf(q)
	}
	u := unitFrom(ctx)
	if u == nil || u.notify == nil || q == nil || !reflect.TypeOf(q).Comparable() {
		return false
	}
	return q == DB(u.tx)
}

// poolOf reports whether db is a pool, on which a notifier may send (a
// connection is not safe for concurrent use), and one that can name a
// notifier (a comparable value: a *pgxpool.Pool, a pointer to a wrapper).
func poolOf(db DB) bool {
	_, ok := db.(acquirer)
	return ok && reflect.TypeOf(db).Comparable()
}

// beginUnit begins the transaction of a unit of work on db. When db is a
// pool, the unit notifies after commit (it returns db as notify); on
// anything else (a connection, a caller's transaction, whose commit the
// unit may not see or which one goroutine must not share) the triggers
// notify, and notify is nil. On a *pgxpool.Pool the transaction begins
// with the unit's first statement, in its round trip (lazyTx); on other
// pools (wrappers) and everything else, at once.
func beginUnit(ctx context.Context, db DB) (tx pgx.Tx, notify DB, err error) {
	if pool, ok := db.(*pgxpool.Pool); ok {
		return newLazyTx(ctx, pool), db, nil // begins with the first statement (lazytx.go)
	}
	tx, err = db.Begin(ctx)
	if err == nil && poolOf(db) {
		notify = db
	}
	return tx, notify, err
}

// notifyAfterCommit records that the unit wrote to the outbox of o (and,
// with events, to the event store of its tables): when the unit
// notifies after commit, it notifies their readers then; otherwise the
// trigger did (or does) in the transaction.
func (u *unit) notifyAfterCommit(o *Outbox, events bool) {
	if u.notify == nil {
		return
	}
	k := notifierKey{db: u.notify, outbox: o, events: events}
	if !slices.Contains(u.notifyKeys, k) {
		u.notifyKeys = append(u.notifyKeys, k)
	}
}

// notified notifies the readers of what the committed unit wrote.
func (u *unit) notified() {
	for _, k := range u.notifyKeys {
		notifierFor(k).notify()
	}
}

// notifier sends the notifications of one outbox (or its event store)
// on one pool, one at a time: a commit while one is being sent makes one
// more follow it.
type notifier struct {
	key notifierKey

	mu      sync.Mutex
	sending bool // a goroutine sends
	again   bool // committed since its NOTIFY began: send once more
}

// notifierKey names a notifier: the pool it sends on, the outbox, and
// whether it notifies the outbox's readers (the relay) or its event
// store's (event stream subscribers).
type notifierKey struct {
	db     DB
	outbox *Outbox
	events bool
}

// notifierFor returns the notifier of k, kept by its outbox.
func notifierFor(k notifierKey) *notifier {
	if n, ok := k.outbox.notifiers.Load(k); ok {
		return n.(*notifier)
	}
	n, _ := k.outbox.notifiers.LoadOrStore(k, &notifier{key: k})
	return n.(*notifier)
}

// notify has the channel notified soon, without waiting. When the
// outbox's relay in this process leads every shard, it is woken directly
// instead: no other process's relay can read the rows, and the NOTIFY
// (its transaction and the listener's wake-up) would cost the database
// and this process a round trip each for the same effect.
func (n *notifier) notify() {
	if !n.key.events && n.key.db == n.key.outbox.db {
		if s := n.key.outbox.sess.Load(); s != nil && s.wakeIfLeadingAll() {
			return
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sending {
		n.again = true
		return
	}
	n.sending = true
	go n.send()
}

func (n *notifier) send() {
	for {
		// A failure (the pool closed, the database gone) delays the
		// readers until their next poll; there is no one to tell.
		_ = n.once()
		n.mu.Lock()
		if !n.again {
			n.sending = false
			n.mu.Unlock()
			return
		}
		n.again = false
		n.mu.Unlock()
	}
}

// once sends one notification: on the outbox's channel, the one its relays
// LISTEN on, or its event store's.
func (n *notifier) once() error {
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	o := n.key.outbox
	r, err := o.resolve(ctx)
	if err != nil {
		return err
	}
	channel := r.channel
	if n.key.events {
		channel = channelName(r.schema, o.n.t.Events)
	}
	_, err = n.key.db.Exec(ctx, notifySQL, channel)
	return err
}

// notifySQL sends a notification in a transaction of its own, which
// does not wait for its commit to reach the disk: a NOTIFY gives its
// transaction an ID, whose commit record would otherwise be flushed
// while the notification lock is held.
const notifySQL = `SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, '')`

// notifyCommitted has the readers of what a write on its own committed
// on the pool db notified: o's relays, and with events its event store's
// readers.
func (o *Outbox) notifyCommitted(db DB, events bool) {
	notifierFor(notifierKey{db: db, outbox: o}).notify()
	if events {
		notifierFor(notifierKey{db: db, outbox: o, events: true}).notify()
	}
}

// notifyInUnit records, when ctx carries a unit of work, that the unit
// writes to o's outbox (and, with events, to the event store of its
// tables): see [unit.notifyAfterCommit].
func (o *Outbox) notifyInUnit(ctx context.Context, events bool) {
	if u := unitFrom(ctx); u != nil {
		u.notifyAfterCommit(o, false)
		if events {
			u.notifyAfterCommit(o, true)
		}
	}
}
