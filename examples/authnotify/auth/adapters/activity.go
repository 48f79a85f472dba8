package adapters

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/postgres"
)

// ActivityStore is the account activity read model as its projection
// writes it and the Activity query reads it. [MemoryActivity] (embedded
// mode) and [PostgresActivity] (production) implement it alike.
type ActivityStore interface {
	app.ActivityReader
	// Add records that the event eventID, of activity type typ, happened
	// to userID at at. The projection adds each event once.
	Add(ctx context.Context, userID, eventID, typ string, at time.Time) error
	// Reset empties the read model, before a rebuild.
	Reset(ctx context.Context) error
}

// MemoryActivity keeps the activity read model in memory. It is safe for
// concurrent use.
type MemoryActivity struct {
	mu      sync.RWMutex
	entries map[string][]memoryEntry // user ID → entries
}

type memoryEntry struct {
	eventID string
	app.ActivityEntry
}

var _ ActivityStore = (*MemoryActivity)(nil)

// NewMemoryActivity returns an empty read model.
func NewMemoryActivity() *MemoryActivity {
	return &MemoryActivity{entries: make(map[string][]memoryEntry)}
}

// Add implements [ActivityStore]; an event ID it holds already is an
// error, as in PostgreSQL.
func (m *MemoryActivity) Add(_ context.Context, userID, eventID, typ string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	es := m.entries[userID]
	if slices.ContainsFunc(es, func(e memoryEntry) bool { return e.eventID == eventID }) {
		return fmt.Errorf("activity: event %s added twice", eventID)
	}
	es = append(es, memoryEntry{eventID: eventID, ActivityEntry: app.ActivityEntry{Type: typ, At: at}})
	slices.SortStableFunc(es, func(a, b memoryEntry) int { return a.At.Compare(b.At) })
	m.entries[userID] = es
	return nil
}

// Reset implements [ActivityStore].
func (m *MemoryActivity) Reset(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.entries)
	return nil
}

// List implements [app.ActivityReader].
func (m *MemoryActivity) List(_ context.Context, userID string) ([]app.ActivityEntry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	es := m.entries[userID]
	out := make([]app.ActivityEntry, len(es))
	for i, e := range es {
		out[i] = e.ActivityEntry
	}
	return out, nil
}

// ActivityTable is the table [PostgresActivity] keeps the read model in,
// in the pool's current schema; [MigrateActivity] creates it.
const ActivityTable = "authnotify_account_activity"

// MigrateActivity creates [ActivityTable] if it does not exist. It takes
// an advisory lock, so replicas starting together take turns.
func MigrateActivity(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtextextended('authnotify/activity-migrate', 0))"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+ActivityTable+` (
	event_id text PRIMARY KEY,
	user_id  text NOT NULL,
	type     text NOT NULL,
	at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS `+ActivityTable+`_user_idx ON `+ActivityTable+` (user_id, at)`)
		if err != nil {
			return fmt.Errorf("activity: migrate: %w", err)
		}
		return nil
	})
}

// PostgresActivity keeps the activity read model in PostgreSQL. Its
// writes join the unit of work of their context (postgres.TxFromContext):
// the projection commits them together with its checkpoint.
type PostgresActivity struct {
	db postgres.DB
}

var _ ActivityStore = (*PostgresActivity)(nil)

// NewPostgresActivity returns the read model on db; run [MigrateActivity]
// first.
func NewPostgresActivity(db postgres.DB) (*PostgresActivity, error) {
	if db == nil {
		return nil, errors.New("activity: nil database")
	}
	return &PostgresActivity{db: db}, nil
}

func (p *PostgresActivity) conn(ctx context.Context) postgres.DB {
	if tx, ok := postgres.TxFromContext(ctx); ok {
		return tx
	}
	return p.db
}

// Add implements [ActivityStore].
func (p *PostgresActivity) Add(ctx context.Context, userID, eventID, typ string, at time.Time) error {
	_, err := p.conn(ctx).Exec(ctx, `INSERT INTO `+ActivityTable+` (event_id, user_id, type, at) VALUES ($1, $2, $3, $4)`,
		eventID, userID, typ, at)
	if err != nil {
		return fmt.Errorf("activity: add event %s: %w", eventID, err)
	}
	return nil
}

// Reset implements [ActivityStore].
func (p *PostgresActivity) Reset(ctx context.Context) error {
	if _, err := p.conn(ctx).Exec(ctx, `DELETE FROM `+ActivityTable); err != nil {
		return fmt.Errorf("activity: reset: %w", err)
	}
	return nil
}

// List implements [app.ActivityReader].
func (p *PostgresActivity) List(ctx context.Context, userID string) ([]app.ActivityEntry, error) {
	rows, err := p.db.Query(ctx, `SELECT type, at FROM `+ActivityTable+` WHERE user_id = $1 ORDER BY at, event_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("activity: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (app.ActivityEntry, error) {
		var e app.ActivityEntry
		err := r.Scan(&e.Type, &e.At)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("activity: list: %w", err)
	}
	return out, nil
}
