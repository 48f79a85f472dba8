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

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/projection"
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
// error, as in PostgreSQL. Inside a transaction of a projection's
// in-memory store (projection.MemoryStore) the entry is added when the
// transaction commits, so a batch that fails leaves nothing behind.
func (m *MemoryActivity) Add(ctx context.Context, userID, eventID, typ string, at time.Time) error {
	m.mu.RLock()
	dup := slices.ContainsFunc(m.entries[userID], func(e memoryEntry) bool { return e.eventID == eventID })
	m.mu.RUnlock()
	if dup {
		return fmt.Errorf("activity: event %s added twice", eventID)
	}
	projection.OnCommit(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		es := m.entries[userID]
		es = append(es, memoryEntry{eventID: eventID, ActivityEntry: app.ActivityEntry{Type: typ, At: at}})
		slices.SortStableFunc(es, func(a, b memoryEntry) int { return a.At.Compare(b.At) })
		m.entries[userID] = es
	})
	return nil
}

// Reset implements [ActivityStore], at commit inside a projection's
// transaction as Add.
func (m *MemoryActivity) Reset(ctx context.Context) error {
	projection.OnCommit(ctx, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		clear(m.entries)
	})
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

// Add implements [ActivityStore]. In a projection batch the insert is
// queued (postgres.QueueExec) and sent with the batch's others and its
// COMMIT, in one round trip.
func (p *PostgresActivity) Add(ctx context.Context, userID, eventID, typ string, at time.Time) error {
	const insert = `INSERT INTO ` + ActivityTable + ` (event_id, user_id, type, at) VALUES ($1, $2, $3, $4)`
	var err error
	if _, ok := postgres.TxFromContext(ctx); ok {
		err = postgres.QueueExec(ctx, insert, eventID, userID, typ, at)
	} else {
		_, err = p.db.Exec(ctx, insert, eventID, userID, typ, at)
	}
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

// ActivityProjectionName is the default name of the activity projection:
// its consumer group and its key in the inbox.
const ActivityProjectionName = "auth.activity"

// ActivityProjection is the projection that keeps store: one entry per
// published user event, of the type [app.ActivityType] names, at the time
// the event occurred. Its reset empties store. It runs on the event bus
// (projection.Projection.Subscribe on the event router: in batches with
// Kafka, one event at a time with the in-memory transport).
func ActivityProjection(name string, reg *eventbus.Registry, store ActivityStore) (*projection.Projection, error) {
	if store == nil {
		return nil, errors.New("activity: nil store")
	}
	p, err := projection.New(name, reg)
	if err != nil {
		return nil, err
	}
	p.OnReset(store.Reset)
	return p, errors.Join(
		onActivity[authevents.UserRegistered](p, store),
		onActivity[authevents.CodeVerificationFailed](p, store),
		onActivity[authevents.UserVerified](p, store),
		onActivity[authevents.UserOtpRequested](p, store),
		onActivity[authevents.PasswordChanged](p, store),
		onActivity[authevents.PasswordResetRequested](p, store),
		onActivity[authevents.PasswordResetFailed](p, store),
		onActivity[authevents.AccountExpired](p, store),
	)
}

func onActivity[E aggregate.Event](p *projection.Projection, store ActivityStore) error {
	return projection.On(p, func(ctx context.Context, _ E, env aggregate.Envelope) error {
		return store.Add(ctx, env.AggregateID, env.ID, app.ActivityType(env.Name), env.OccurredAt)
	})
}
