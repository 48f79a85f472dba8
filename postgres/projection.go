package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dddkit/dddkit/projection"
)

// ProjectionStoreConfig configures a [ProjectionStore]. The zero value
// (or nil) is usable: the default table.
type ProjectionStoreConfig struct {
	// Tables names the tables; Tables.Projections is this store's. Give
	// it the Tables that [Migrate] got.
	Tables Tables
}

// ProjectionStore is the [projection.Store] in PostgreSQL: one row per
// projection with its checkpoint and status. Its transactions are units
// of work ([UnitOfWork]): a projection's handlers write the read model
// with [TxFromContext] (or with a repository given the handler's ctx),
// and those writes commit with the new checkpoint or not at all. Loading
// a checkpoint in a transaction locks its row (SELECT … FOR UPDATE), so
// runners of one projection in several processes take turns batch by
// batch and never apply an event twice.
//
// The table is created by [Migrate]. Create a store with
// [NewProjectionStore].
type ProjectionStore struct {
	db     DB
	uow    *UnitOfWork
	load   string
	lock   string
	upsert string
	names  string
}

var _ projection.Store = (*ProjectionStore)(nil)

// NewProjectionStore returns the projection store in db's tables (cfg
// nil = defaults). It does not touch the database.
func NewProjectionStore(db DB, cfg *ProjectionStoreConfig) (*ProjectionStore, error) {
	var c ProjectionStoreConfig
	if cfg != nil {
		c = *cfg
	}
	n, err := newNames(&c.Tables)
	if err != nil || db == nil {
		return nil, errors.Join(err, nilDB(db, "NewProjectionStore"))
	}
	uow, err := NewUnitOfWork(db)
	if err != nil {
		return nil, err
	}
	t := n.q(n.t.Projections)
	cols := `position, applied, last_event_at, last_error, last_error_at, rebuilding, rebuild_target, updated_at`
	return &ProjectionStore{
		db:   db,
		uow:  uow,
		load: `SELECT ` + cols + ` FROM ` + t + ` WHERE name = $1`,
		// The row is created first so that there is a row to lock.
		lock: `INSERT INTO ` + t + ` (name) VALUES ($1) ON CONFLICT (name) DO NOTHING`,
		upsert: `INSERT INTO ` + t + ` (name, ` + cols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())
ON CONFLICT (name) DO UPDATE SET position = $2, applied = $3, last_event_at = $4, last_error = $5,
	last_error_at = $6, rebuilding = $7, rebuild_target = $8, updated_at = now()`,
		names: `SELECT name FROM ` + t + ` ORDER BY name`,
	}, nil
}

// Do implements [projection.Store]: fn runs in a [UnitOfWork] (joining
// the one in ctx, if any). Statements queued with [QueueExec] during fn
// are sent together when fn returns: on a pool with the unit's COMMIT,
// in its round trip.
func (s *ProjectionStore) Do(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.uow.Do(ctx, func(ctx context.Context) error { return queued(ctx, fn) })
}

type queueKey struct{}

// writeQueue holds the statements queued in one ProjectionStore.Do or
// one batch of the Inbox.
type writeQueue struct{ b pgx.Batch }

// queued runs fn, in the transaction of ctx, with a write queue for
// [QueueExec] (unless ctx has one already) and sends the queued
// statements when fn returns nil.
func queued(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, nested := ctx.Value(queueKey{}).(*writeQueue); nested {
		return fn(ctx)
	}
	q := &writeQueue{}
	if err := fn(context.WithValue(ctx, queueKey{}, q)); err != nil {
		return err
	}
	return q.flush(ctx)
}

// QueueExec runs a statement in the transaction of ctx. In a projection
// batch of the [ProjectionStore], and in a batch of the [Inbox] (an
// eventbus.HandleOnce handler on Kafka), it is queued instead, and the
// batch's queued statements are sent together, in order, when the batch
// commits (on a pool, with its COMMIT, in one round trip): a handler that
// writes a row or two per event then pays no round trip of its own. An
// error of a queued statement fails the batch, which is then applied one
// event at a time, so the failing event is found.
//
// Queue only statements whose effects later handlers of the same batch
// do not read back (inserts, upserts such as
// "SET total = total + $2"); use [TxFromContext] for the others.
// Without such a batch in ctx, QueueExec executes at once on the unit of
// work of ctx, and fails when there is none.
func QueueExec(ctx context.Context, sql string, args ...any) error {
	if q, ok := ctx.Value(queueKey{}).(*writeQueue); ok {
		q.b.Queue(sql, args...)
		return nil
	}
	tx, ok := TxFromContext(ctx)
	if !ok {
		return errors.New("postgres: QueueExec: no unit of work in the context")
	}
	_, err := tx.Exec(ctx, sql, args...)
	return err
}

// flush sends the queued statements on the transaction of ctx.
func (q *writeQueue) flush(ctx context.Context) error {
	n := q.b.Len()
	if n == 0 {
		return nil
	}
	tx, ok := TxFromContext(ctx)
	if !ok {
		return errors.New("postgres: projection store: no transaction to flush the queued statements on")
	}
	if held := holding(tx); held != nil {
		// On a pool: they go out with the unit's COMMIT (or its next
		// statement), in its round trip.
		held.laterBatch(&q.b, func(i int, err error) error {
			return fmt.Errorf("postgres: queued statement %d of %d: %w", i+1, n, err)
		})
		return nil
	}
	br := tx.SendBatch(ctx, &q.b)
	for i := range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return fmt.Errorf("postgres: queued statement %d of %d: %w", i+1, n, err)
		}
	}
	return br.Close()
}

// Load implements [projection.Store]. Inside Do it locks the row until
// the transaction ends.
func (s *ProjectionStore) Load(ctx context.Context, name string) (projection.Checkpoint, error) {
	var cp projection.Checkpoint
	q := s.load
	tx, inTx := TxFromContext(ctx)
	db := s.db
	if inTx {
		db = tx
		if _, err := tx.Exec(ctx, s.lock, name); err != nil {
			return cp, s.fail("lock", name, err)
		}
		q += ` FOR UPDATE`
	}
	var lastEventAt, lastErrorAt *time.Time
	err := db.QueryRow(ctx, q, name).Scan(&cp.Position, &cp.Applied, &lastEventAt, &cp.LastError,
		&lastErrorAt, &cp.Rebuilding, &cp.RebuildTarget, &cp.UpdatedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return projection.Checkpoint{}, nil
	case err != nil:
		return cp, s.fail("load", name, err)
	}
	if lastEventAt != nil {
		cp.LastEventAt = *lastEventAt
	}
	if lastErrorAt != nil {
		cp.LastErrorAt = *lastErrorAt
	}
	return cp, nil
}

// Save implements [projection.Store], in the unit of work of ctx when
// there is one.
func (s *ProjectionStore) Save(ctx context.Context, name string, cp projection.Checkpoint) error {
	if name == "" {
		return errors.New("postgres: projection store: empty name")
	}
	_, err := querier(ctx, s.db).Exec(ctx, s.upsert, name, cp.Position, cp.Applied, nullTime(cp.LastEventAt),
		cp.LastError, nullTime(cp.LastErrorAt), cp.Rebuilding, cp.RebuildTarget)
	if err != nil {
		return s.fail("save", name, err)
	}
	return nil
}

func (s *ProjectionStore) fail(what, name string, err error) error {
	if isUndefinedTable(err) {
		return fmt.Errorf("postgres: projection %q: %s checkpoint: %w: %w", name, what, ErrNotMigrated, err)
	}
	return fmt.Errorf("postgres: projection %q: %s checkpoint: %w", name, what, err)
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}
