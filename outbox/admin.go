package outbox

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Admin is the operator's view of a PostgreSQL outbox: statistics, the
// failed events, and putting them back in line. It needs no running relay.
type Admin struct {
	db *pgxpool.Pool
	oc Config

	mu       sync.Mutex
	resolved *names
}

// NewAdmin returns an Admin for the outbox of cfg (nil = defaults) in db.
func NewAdmin(db *pgxpool.Pool, cfg *Config) (*Admin, error) {
	if db == nil {
		return nil, errors.New("outbox: NewAdmin: nil pool")
	}
	oc, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Admin{db: db, oc: oc}, nil
}

func (a *Admin) names(ctx context.Context) (names, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.resolved != nil {
		return *a.resolved, nil
	}
	n, err := resolve(ctx, a.db, a.oc)
	if err != nil {
		return names{}, err
	}
	a.resolved = &n
	return n, nil
}

// Stats counts pending, retrying and failed rows and measures the age of
// the oldest pending one.
func (a *Admin) Stats(ctx context.Context) (Stats, error) {
	n, err := a.names(ctx)
	if err != nil {
		return Stats{}, err
	}
	t := n.qtable
	var (
		s      Stats
		oldest *float64
	)
	err = a.db.QueryRow(ctx, `SELECT
	(SELECT count(*) FROM `+t+` WHERE status = 'pending'),
	(SELECT count(*) FROM `+t+` WHERE status = 'pending' AND attempts > 0),
	(SELECT count(*) FROM `+t+` WHERE status = 'failed'),
	(SELECT greatest(extract(epoch FROM now() - created_at)::float8, 0) FROM `+t+` WHERE status = 'pending' ORDER BY seq LIMIT 1)`).
		Scan(&s.Pending, &s.Retrying, &s.Failed, &oldest)
	if err != nil {
		return Stats{}, fmt.Errorf("outbox: stats: %w", err)
	}
	if oldest != nil {
		s.OldestPending = time.Duration(*oldest * float64(time.Second))
	}
	return s, nil
}

// Failed lists up to limit failed rows (all when limit ≤ 0) with a
// sequence number above afterSeq, oldest first. Page through them by
// passing the last Seq seen.
func (a *Admin) Failed(ctx context.Context, afterSeq int64, limit int) ([]Record, error) {
	return a.list(ctx, StatusFailed, afterSeq, limit)
}

// List lists up to limit rows (all when limit ≤ 0) of one status with a
// sequence number above afterSeq, in sequence order.
func (a *Admin) List(ctx context.Context, status Status, afterSeq int64, limit int) ([]Record, error) {
	return a.list(ctx, status, afterSeq, limit)
}

func (a *Admin) list(ctx context.Context, status Status, afterSeq int64, limit int) ([]Record, error) {
	n, err := a.names(ctx)
	if err != nil {
		return nil, err
	}
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := a.db.Query(ctx, `SELECT `+recordColumns+` FROM `+n.qtable+`
		WHERE status = $1 AND seq > $2 ORDER BY seq LIMIT $3`, string(status), afterSeq, lim)
	if err != nil {
		return nil, fmt.Errorf("outbox: list %s rows: %w", status, err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return nil, fmt.Errorf("outbox: list %s rows: %w", status, err)
	}
	return recs, nil
}

// Retry puts the given failed rows back to pending with their attempts
// reset; the relay publishes them next, before the later events of their
// aggregates. Rows that are not failed are left alone. It returns the
// number of rows changed.
func (a *Admin) Retry(ctx context.Context, seqs ...int64) (int64, error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	return a.retry(ctx, `AND seq = ANY($1)`, seqs)
}

// RetryAllFailed puts every failed row back to pending; see [Admin.Retry].
func (a *Admin) RetryAllFailed(ctx context.Context) (int64, error) {
	return a.retry(ctx, ``)
}

func (a *Admin) retry(ctx context.Context, where string, args ...any) (int64, error) {
	n, err := a.names(ctx)
	if err != nil {
		return 0, err
	}
	tag, err := a.db.Exec(ctx, `UPDATE `+n.qtable+` SET status = 'pending', attempts = 0, next_attempt_at = NULL
		WHERE status = 'failed' `+where, args...)
	if err != nil {
		return 0, fmt.Errorf("outbox: retry failed rows: %w", err)
	}
	if tag.RowsAffected() > 0 {
		// Wake the relay at once.
		if _, err := a.db.Exec(ctx, `SELECT pg_notify($1, '')`, n.channel); err != nil {
			return tag.RowsAffected(), fmt.Errorf("outbox: notify relay: %w", err)
		}
	}
	return tag.RowsAffected(), nil
}

// Discard deletes the given failed rows without publishing them, which
// unblocks the later events of their aggregates. Rows that are not failed
// are left alone. It returns the number of rows deleted.
func (a *Admin) Discard(ctx context.Context, seqs ...int64) (int64, error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	n, err := a.names(ctx)
	if err != nil {
		return 0, err
	}
	tag, err := a.db.Exec(ctx, `DELETE FROM `+n.qtable+` WHERE status = 'failed' AND seq = ANY($1)`, seqs)
	if err != nil {
		return 0, fmt.Errorf("outbox: discard failed rows: %w", err)
	}
	if tag.RowsAffected() > 0 {
		if _, err := a.db.Exec(ctx, `SELECT pg_notify($1, '')`, n.channel); err != nil {
			return tag.RowsAffected(), fmt.Errorf("outbox: notify relay: %w", err)
		}
	}
	return tag.RowsAffected(), nil
}

// DeletePublished deletes published rows whose publish is at least
// olderThan ago and returns how many. The relay does this by itself
// according to RelayConfig.Retention; this is for outboxes kept forever
// (negative Retention) or one-off clean-ups.
func (a *Admin) DeletePublished(ctx context.Context, olderThan time.Duration) (int64, error) {
	n, err := a.names(ctx)
	if err != nil {
		return 0, err
	}
	return deletePublished(ctx, a.db, n, olderThan)
}
