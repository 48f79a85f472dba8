package repository

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
)

// Transact runs fn in a transaction begun on db, commits it if fn returns
// nil and rolls it back otherwise (also when fn panics). Aggregates that fn
// saves through the tx it is given, with [Postgres.SaveTx] or
// [Postgres.UpdateTx] of any repository, are marked committed once the
// commit has succeeded, and never when it fails. Within it one aggregate
// may be saved several times; each SaveTx writes the events recorded since
// the previous one.
//
//	err := repository.Transact(ctx, pool, func(ctx context.Context, tx pgx.Tx) error {
//		if err := orders.SaveTx(ctx, tx, order); err != nil {
//			return err
//		}
//		return stock.UpdateTx(ctx, tx, order.ItemID(), func(s *Stock) error { return s.Reserve(order.Quantity()) })
//	})
//
// Transact does not retry; wrap it in your own retry loop (or the cqrs
// retry middleware) if conflicts are expected.
func Transact(ctx context.Context, db Beginner, fn func(ctx context.Context, tx pgx.Tx) error) error {
	if db == nil || fn == nil {
		return fmt.Errorf("repository: Transact: db and fn must not be nil")
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("repository: begin: %w", err)
	}
	defer rollback(ctx, tx)
	tt := &trackedTx{Tx: tx}
	if err := fn(ctx, tt); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("repository: commit: %w", err)
	}
	for root := range tt.saved {
		aggregate.MarkCommitted(root)
	}
	return nil
}

// trackedTx is the pgx.Tx that Transact hands to fn: it remembers which
// aggregates were saved through it and at which version.
type trackedTx struct {
	pgx.Tx
	saved map[*aggregate.Root]int64
}

func (t *trackedTx) track(root *aggregate.Root) {
	if t.saved == nil {
		t.saved = make(map[*aggregate.Root]int64)
	}
	t.saved[root] = root.Version()
}
