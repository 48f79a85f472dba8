package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/outbox"
)

// promoteLimit bounds how many due deadlines one Fetch makes pending.
const promoteLimit = 1000

// Schedule writes event as a deadline due at at under key, in the unit
// of work in ctx when there is one (so it commits or rolls back with the
// handler's or command's other writes), in a transaction of its own
// otherwise. A deadline still scheduled under key is replaced: it will
// not fire. The relay publishes the deadline once it is due, with the
// envelope [outbox.DeadlineEnvelope] describes; until then [Outbox.Cancel]
// removes it.
//
// Deadlines are rows of the outbox with status 'scheduled': they survive
// restarts of every process, and a relay that takes over from another
// fires the ones that became due meanwhile. Each fires at least once
// (publish is at least once); consume it with an inbox to apply it once.
//
// Two transactions scheduling one key at once: the second fails with an
// error wrapping [aggregate.ErrConcurrencyConflict] (retry it).
func (o *Outbox) Schedule(ctx context.Context, key string, at time.Time, event aggregate.Event) error {
	env, err := outbox.DeadlineEnvelope(ctx, o.reg, key, at, event)
	if err != nil {
		return err
	}
	rows, err := o.encode([]aggregate.Envelope{env})
	if err != nil {
		return err
	}
	r, err := o.resolve(ctx)
	if err != nil {
		return err
	}
	return o.inUnit(ctx, func(ctx context.Context) error {
		q := querier(ctx, o.db)
		if _, err := q.Exec(ctx, r.cancelSQL, key); err != nil {
			return fmt.Errorf("postgres: outbox: replace deadline %q: %w", key, err)
		}
		if err := o.write(ctx, q, rows); err != nil {
			return err
		}
		if _, err := q.Exec(ctx, r.scheduleSQL, env.ID, at, key); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "23505" {
				return fmt.Errorf("postgres: outbox: deadline %q scheduled by a concurrent transaction: %w: %w", key, aggregate.ErrConcurrencyConflict, err)
			}
			return fmt.Errorf("postgres: outbox: schedule deadline %q: %w", key, err)
		}
		return nil
	})
}

// Cancel removes the deadline scheduled under key, in the unit of work
// in ctx when there is one, and reports whether there was one. A
// deadline that a relay has taken up (it was due) is no longer
// scheduled: Cancel reports false and it fires.
func (o *Outbox) Cancel(ctx context.Context, key string) (bool, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return false, err
	}
	tag, err := querier(ctx, o.db).Exec(ctx, r.cancelSQL, key)
	if err != nil {
		return false, fmt.Errorf("postgres: outbox: cancel deadline %q: %w", key, err)
	}
	return tag.RowsAffected() > 0, nil
}

// NextDue implements [outbox.Source]: when the earliest deadline that
// was not due at the last Fetch becomes due, measured on this process's
// clock (from the database's remaining time, so clock skew between the
// two does not matter).
func (o *Outbox) NextDue() time.Time {
	ns := o.nextDue.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// inUnit runs fn in the unit of work of ctx, or in a transaction of its
// own when ctx has none.
func (o *Outbox) inUnit(ctx context.Context, fn func(ctx context.Context) error) error {
	if unitFrom(ctx) != nil {
		return fn(ctx)
	}
	return run(ctx, o.db, fn)
}

// scheduleSQLs fills the statements of deadlines into r.
func (o *Outbox) scheduleSQLs(ctx context.Context, r *resolvedOutbox) error {
	var seq *string
	if err := o.db.QueryRow(ctx, `SELECT pg_get_serial_sequence($1, 'seq')`, r.qtable).Scan(&seq); err != nil {
		return fmt.Errorf("postgres: outbox: find the sequence of %s: %w", r.qtable, err)
	}
	if seq == nil {
		return fmt.Errorf("%w: %s.seq has no sequence", ErrNotMigrated, r.qtable)
	}
	t := r.qtable
	r.cancelSQL = `DELETE FROM ` + t + ` WHERE status = 'scheduled' AND schedule_key = $1`
	r.scheduleSQL = `UPDATE ` + t + ` SET status = 'scheduled', due_at = $2, schedule_key = $3 WHERE event_id = $1`
	// Due rows become pending with new sequence numbers, in order of due
	// time, so that they are published after what is pending already and
	// in the order they became due. Rows a Cancel or Schedule holds are
	// skipped (they are being removed). The second column is the time
	// until the next scheduled row is due, in milliseconds.
	r.promoteSQL = `WITH due AS (
	SELECT seq, due_at FROM ` + t + ` WHERE status = 'scheduled' AND due_at <= now()
	ORDER BY due_at, seq LIMIT ` + fmt.Sprint(promoteLimit) + ` FOR UPDATE SKIP LOCKED
), renumbered AS (
	SELECT d.seq, nextval(` + quoteLiteral(*seq) + `::regclass) AS next FROM (SELECT seq FROM due ORDER BY due_at, seq) d
), moved AS (
	UPDATE ` + t + ` o SET seq = r.next, status = 'pending' FROM renumbered r WHERE o.seq = r.seq RETURNING 1
)
SELECT (SELECT count(*) FROM moved),
	(SELECT extract(epoch FROM min(due_at) - now())::float8 * 1000 FROM ` + t + ` WHERE status = 'scheduled' AND due_at > now())`
	return nil
}

// readPromoted reads the result of r.promoteSQL, queued in a batch
// ahead of the fetch so both take one round trip.
func (o *Outbox) readPromoted(br pgx.BatchResults) error {
	var (
		moved  int64
		nextMs *float64
	)
	if err := br.QueryRow().Scan(&moved, &nextMs); err != nil {
		return fmt.Errorf("postgres: outbox: promote due deadlines: %w", err)
	}
	switch {
	case moved >= promoteLimit:
		o.nextDue.Store(time.Now().UnixNano()) // more are due
	case nextMs == nil:
		o.nextDue.Store(0)
	default:
		o.nextDue.Store(time.Now().Add(time.Duration(*nextMs * float64(time.Millisecond))).UnixNano())
	}
	return nil
}
