package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DB is the database handle every adapter of this package accepts.
// *pgxpool.Pool, *pgx.Conn and pgx.Tx all satisfy it.
//
// An adapter given a DB runs its statements on the unit of work in the
// context when there is one (see [UnitOfWork]), and on the DB otherwise.
// Given a pgx.Tx, everything it does happens inside that transaction (the
// unit of work's Begin becomes a savepoint). The adapter cannot see that
// transaction commit: a save on it marks the aggregate committed once
// its savepoint is released, and an aggregate whose transaction the
// caller then rolls back must be loaded again. A [UnitOfWork] on a pool,
// whose transaction the caller's own SQL joins through [TxFromContext],
// marks aggregates committed after its COMMIT.
type DB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// querier returns the transaction of the unit of work in ctx, or db when
// there is none.
func querier(ctx context.Context, db DB) DB {
	if u := unitFrom(ctx); u != nil {
		return u.tx
	}
	return db
}

func rollback(ctx context.Context, tx pgx.Tx) {
	_ = tx.Rollback(context.WithoutCancel(ctx))
}

// The handles DB is for.
var (
	_ DB = (*pgxpool.Pool)(nil)
	_ DB = (*pgx.Conn)(nil)
	_ DB = pgx.Tx(nil)
)
