package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/retry"
)

// RepositoryConfig configures a [Repository] or an [EventStore]. A nil
// config means the defaults.
type RepositoryConfig struct {
	// Retry, if set, makes Update re-run its whole load → fn → save cycle
	// when the save loses a race with another writer
	// ([aggregate.ErrConcurrencyConflict]), each time with a freshly loaded
	// aggregate, so fn must act only on the aggregate it is given. Zero
	// fields of the policy mean 3 attempts, a BaseDelay of 10ms and a
	// MaxDelay of 1s. nil means Update returns the conflict at once.
	// Inside a unit of work Update never retries: the unit's transaction
	// is already spoilt, retry the whole command (cqrs.Retry outside
	// cqrs.Transaction). Do not stack both.
	Retry *retry.Policy

	// LockOnUpdate makes Update read the row with SELECT ... FOR NO KEY
	// UPDATE, so that concurrent updates of one aggregate wait for each
	// other instead of failing with a conflict at save. The price is a
	// row lock held while fn runs (or, in a unit of work, until it
	// commits); keep fn free of slow calls. Load and Save are not
	// affected, and a Save racing an Update can still conflict. The event
	// store ignores it.
	LockOnUpdate bool

	// Options are applied, through [aggregate.Restore] (or
	// [aggregate.Replay]), to every aggregate this repository loads (Load,
	// LoadByKey and Update). Typically aggregate.WithClock(clock), so that
	// events recorded after a load are stamped by the same clock as those
	// of a new aggregate (a fake one in tests). The metadata of the
	// request's context ([aggregate.MetadataFromContext]) is applied
	// after them; fields it leaves empty are filled from an
	// [aggregate.WithMetadata] given here. nil entries are ignored.
	Options []aggregate.Option
}

// Repository is the PostgreSQL adapter of [repository.Repository] for
// state-stored aggregates. It keeps every aggregate of its mapping's Type
// as one row of the aggregates table: type, ID, version, state (jsonb)
// and timestamps, plus one row per unique key in the keys table.
//
// Save writes the row, the keys and the aggregate's uncommitted events
// (into the [Outbox]) in one transaction, with optimistic concurrency on
// the version: the unit of work in ctx when there is one (see
// [UnitOfWork]), its own otherwise. A Save or Update that fails inside a
// unit of work makes the unit roll back ([ErrRollbackOnly] if the
// function returns nil anyway), so nothing is ever half-saved.
type Repository[A aggregate.Aggregate] struct {
	db      DB
	outbox  *Outbox
	mapping repository.Mapping[A]
	retry   aggstore.Retry
	lock    bool
	options []aggregate.Option

	sqlLoad, sqlLoadLock, sqlLoadByKey string
	sqlInsert, sqlUpdate, sqlVersion   string
	sqlKeys                            string
}

// NewRepository returns the repository of mapping.Type in db. Its events
// go into ob, whose [Tables] also name the aggregates and keys tables
// (create them with [Migrate]).
func NewRepository[A aggregate.Aggregate](db DB, ob *Outbox, mapping repository.Mapping[A], cfg *RepositoryConfig) (*Repository[A], error) {
	if cfg == nil {
		cfg = &RepositoryConfig{}
	}
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("postgres: NewRepository: nil DB"))
	}
	if ob == nil {
		errs = append(errs, errors.New("postgres: NewRepository: nil Outbox"))
	}
	errs = append(errs, mapping.Validate())
	retry, err := aggstore.NewRetry(cfg.Retry, "RepositoryConfig.Retry")
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	state, keys := ob.n.q(ob.n.t.Aggregates), ob.n.q(ob.n.t.AggregateKeys)
	return &Repository[A]{
		db:      db,
		outbox:  ob,
		mapping: mapping,
		retry:   retry,
		lock:    cfg.LockOnUpdate,
		options: slices.Clone(cfg.Options),

		sqlLoad:     `SELECT version, state FROM ` + state + ` WHERE type = $1 AND id = $2`,
		sqlLoadLock: `SELECT version, state FROM ` + state + ` WHERE type = $1 AND id = $2 FOR NO KEY UPDATE`,
		sqlLoadByKey: `SELECT s.id, s.version, s.state FROM ` + keys + ` k JOIN ` + state + ` s ON s.type = k.type AND s.id = k.id` +
			` WHERE k.type = $1 AND k.name = $2 AND k.value = $3`,
		sqlInsert:  `INSERT INTO ` + state + ` (type, id, version, state) VALUES ($1, $2, $3, $4) ON CONFLICT (type, id) DO NOTHING`,
		sqlUpdate:  `UPDATE ` + state + ` SET version = $4, state = $5, updated_at = now() WHERE type = $1 AND id = $2 AND version = $3`,
		sqlVersion: `SELECT version FROM ` + state + ` WHERE type = $1 AND id = $2`,
		// One statement keeps the keys of the aggregate as wanted and
		// returns the wanted keys another aggregate holds.
		sqlKeys: `WITH wanted AS (SELECT * FROM unnest($3::text[], $4::text[]) AS w(name, value)),
missing AS (
	SELECT w.name, w.value FROM wanted w
	WHERE NOT EXISTS (SELECT 1 FROM ` + keys + ` k WHERE k.type = $1 AND k.name = w.name AND k.value = w.value AND k.id = $2)
),
released AS (
	DELETE FROM ` + keys + ` k WHERE k.type = $1 AND k.id = $2
	AND NOT EXISTS (SELECT 1 FROM wanted w WHERE w.name = k.name AND w.value = k.value)
),
taken AS (
	INSERT INTO ` + keys + ` (type, name, value, id) SELECT $1, name, value, $2 FROM missing
	ON CONFLICT (type, name, value) DO NOTHING
	RETURNING name, value
)
SELECT m.name, m.value FROM missing m
WHERE NOT EXISTS (SELECT 1 FROM taken t WHERE t.name = m.name AND t.value = m.value)`,
	}, nil
}

// Load returns the aggregate with the given ID (in the unit of work of
// ctx, when there is one). None gives an error wrapping
// [aggregate.ErrNotFound].
func (r *Repository[A]) Load(ctx context.Context, id string) (A, error) {
	return r.load(ctx, querier(ctx, r.db), id, false)
}

func (r *Repository[A]) load(ctx context.Context, q DB, id string, forUpdate bool) (A, error) {
	var zero A
	var version int64
	var state []byte
	sql := r.sqlLoad
	if forUpdate && r.lock {
		sql = r.sqlLoadLock
	}
	if err := q.QueryRow(ctx, sql, r.mapping.Type, id).Scan(&version, &state); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			err = aggregate.ErrNotFound
		}
		return zero, fmt.Errorf("repository: load %s %s: %w", r.mapping.Type, id, err)
	}
	return r.decode(ctx, id, version, state)
}

// LoadByKey returns the aggregate that holds the unique key name=value
// (see [repository.Mapping].Keys). None gives an error wrapping
// [aggregate.ErrNotFound].
func (r *Repository[A]) LoadByKey(ctx context.Context, name, value string) (A, error) {
	var zero A
	var id string
	var version int64
	var state []byte
	if err := querier(ctx, r.db).QueryRow(ctx, r.sqlLoadByKey, r.mapping.Type, name, value).Scan(&id, &version, &state); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			err = aggregate.ErrNotFound
		}
		return zero, fmt.Errorf("repository: load %s by %s: %w", r.mapping.Type, name, err)
	}
	return r.decode(ctx, id, version, state)
}

func (r *Repository[A]) decode(ctx context.Context, id string, version int64, state []byte) (A, error) {
	return aggstore.DecodeState(r.mapping.Type, id, version, state, r.mapping.Decode, aggstore.LoadOptions(ctx, r.options))
}

// Save stores a's state, keys and uncommitted events; see
// [repository.Repository].Save for the errors.
func (r *Repository[A]) Save(ctx context.Context, a A) error {
	return save(ctx, r.db, r.mapping.Type, a, r.write)
}

// Update loads the aggregate, runs fn on it and saves it; see
// [repository.Repository].Update and [RepositoryConfig].Retry.
func (r *Repository[A]) Update(ctx context.Context, id string, fn func(A) error) error {
	return update(ctx, r.db, r.retry, r.mapping.Type, id, fn, r.load, r.write)
}

func (r *Repository[A]) write(ctx context.Context, tx pgx.Tx, root *aggregate.Root, a A, base int64) error {
	typ, id, version := r.mapping.Type, root.ID(), root.Version()
	state, err := aggstore.EncodeState(typ, id, r.mapping.Encode, a)
	if err != nil {
		return err
	}
	events := aggstore.PendingEvents(ctx, root)
	if base != root.CommittedVersion() {
		events = events[base-root.CommittedVersion():]
	}
	rows, err := r.outbox.encode(events)
	if err != nil {
		return fmt.Errorf("repository: save %s %s: %w", typ, id, err)
	}
	sql, args := r.sqlUpdate, []any{typ, id, base, version, state}
	if base == 0 {
		sql, args = r.sqlInsert, []any{typ, id, version, state}
	}

	var affected int64
	if r.mapping.Keys == nil {
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("repository: save %s %s: %w", typ, id, err)
		}
		affected = tag.RowsAffected()
	} else {
		var taken []repository.Key
		affected, taken, err = r.writeWithKeys(ctx, tx, sql, args, id, r.mapping.KeysOf(a))
		if err != nil {
			return err
		}
		if affected == 1 && len(taken) > 0 {
			return &repository.DuplicateKeyError{Type: typ, ID: id, Key: taken[0]}
		}
	}
	if affected != 1 && base == 0 {
		return &aggregate.AlreadyExistsError{Type: typ, ID: id}
	}
	if affected != 1 {
		actual := int64(0)
		if err := tx.QueryRow(ctx, r.sqlVersion, typ, id).Scan(&actual); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			actual = -1
		}
		return &aggregate.ConflictError{Type: typ, ID: id, Expected: base, Actual: actual}
	}
	if err := r.outbox.write(ctx, tx, rows); err != nil {
		return fmt.Errorf("repository: save %s %s: write events to outbox: %w", typ, id, err)
	}
	return nil
}

// writeWithKeys runs the state statement and the keys statement in one
// round trip.
func (r *Repository[A]) writeWithKeys(ctx context.Context, tx pgx.Tx, sql string, args []any, id string, keys []repository.Key) (int64, []repository.Key, error) {
	names := make([]string, len(keys))
	values := make([]string, len(keys))
	for i, k := range keys {
		names[i], values[i] = k.Name, k.Value
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	b.Queue(r.sqlKeys, r.mapping.Type, id, names, values)
	br := tx.SendBatch(ctx, b)
	tag, err := br.Exec()
	if err != nil {
		_ = br.Close()
		return 0, nil, fmt.Errorf("repository: save %s %s: %w", r.mapping.Type, id, err)
	}
	var taken []repository.Key
	rows, err := br.Query()
	if err == nil {
		taken, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (repository.Key, error) {
			var k repository.Key
			return k, row.Scan(&k.Name, &k.Value)
		})
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, nil, fmt.Errorf("repository: save %s %s: keys: %w", r.mapping.Type, id, err)
	}
	return tag.RowsAffected(), taken, nil
}

var (
	_ repository.Repository[aggregate.Aggregate] = (*Repository[aggregate.Aggregate])(nil)
	_ repository.KeyLoader[aggregate.Aggregate]  = (*Repository[aggregate.Aggregate])(nil)
)
