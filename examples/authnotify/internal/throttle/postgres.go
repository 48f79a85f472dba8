package throttle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Table is the table [Postgres] keeps its state in, in the pool's
// current schema; [Migrate] creates it.
const Table = "authnotify_login_throttle"

// Migrate creates [Table] if it does not exist. It takes an advisory lock,
// so replicas starting together take turns.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('authnotify/throttle-migrate', 0))"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+Table+` (
	key           text PRIMARY KEY,
	failures      integer NOT NULL,
	blocked_until timestamptz,
	window_start  timestamptz
)`)
		return err
	})
}

// Postgres keeps the state in PostgreSQL, shared by every replica.
type Postgres struct {
	cfg  Config
	pool *pgxpool.Pool
}

var _ Throttle = (*Postgres)(nil)

// NewPostgres returns a store on pool; run [Migrate] first.
func NewPostgres(pool *pgxpool.Pool, cfg *Config) (*Postgres, error) {
	if pool == nil {
		return nil, errors.New("throttle: nil pool")
	}
	return &Postgres{cfg: cfg.withDefaults(), pool: pool}, nil
}

// Check implements [Throttle].
func (p *Postgres) Check(ctx context.Context, account, address string) error {
	now := p.cfg.Now()
	rows, err := p.pool.Query(ctx, `SELECT key, failures, blocked_until, window_start FROM `+Table+` WHERE key = ANY($1)`,
		[]string{accountKey(account), addressKey(address)})
	if err != nil {
		return fmt.Errorf("throttle: check: %w", err)
	}
	var acc, addr *state
	for rows.Next() {
		var (
			k              string
			s              state
			blocked, start *time.Time
		)
		if err := rows.Scan(&k, &s.failures, &blocked, &start); err != nil {
			return fmt.Errorf("throttle: check: %w", err)
		}
		if blocked != nil {
			s.blockedUntil = *blocked
		}
		if start != nil {
			s.windowStart = *start
		}
		if k == accountKey(account) {
			acc = &s
		} else {
			addr = &s
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("throttle: check: %w", err)
	}
	return verdict(now, p.cfg.PerAddress, acc, addr)
}

// Failed implements [Throttle]. Each key is updated by one atomic upsert,
// so failures on several replicas at once all count.
func (p *Postgres) Failed(ctx context.Context, account, address string) error {
	now := p.cfg.Now()
	// The account: one more failure; from MaxFailures on, blocked for the
	// back-off of the new count.
	var n int
	err := p.pool.QueryRow(ctx, `INSERT INTO `+Table+` AS t (key, failures) VALUES ($1, 1)
ON CONFLICT (key) DO UPDATE SET failures = t.failures + 1
RETURNING failures`, accountKey(account)).Scan(&n)
	if err != nil {
		return fmt.Errorf("throttle: record failure: %w", err)
	}
	if b := Backoff(n); b > 0 {
		// Only if no later failure changed the count meanwhile: that one
		// sets a lock at least as long.
		if _, err := p.pool.Exec(ctx, `UPDATE `+Table+` SET blocked_until = $2 WHERE key = $1 AND failures = $3`,
			accountKey(account), now.Add(b), n); err != nil {
			return fmt.Errorf("throttle: record failure: %w", err)
		}
	}
	// The address: a new window once the last one ended.
	_, err = p.pool.Exec(ctx, `INSERT INTO `+Table+` AS t (key, failures, window_start) VALUES ($1, 1, $2)
ON CONFLICT (key) DO UPDATE SET
	failures = CASE WHEN t.window_start <= $2 - $3::interval THEN 1 ELSE t.failures + 1 END,
	window_start = CASE WHEN t.window_start <= $2 - $3::interval THEN $2 ELSE t.window_start END`,
		addressKey(address), now, Window)
	if err != nil {
		return fmt.Errorf("throttle: record failure: %w", err)
	}
	return nil
}

// Succeeded implements [Throttle].
func (p *Postgres) Succeeded(ctx context.Context, account string) error {
	if _, err := p.pool.Exec(ctx, `DELETE FROM `+Table+` WHERE key = $1`, accountKey(account)); err != nil {
		return fmt.Errorf("throttle: reset: %w", err)
	}
	return nil
}
