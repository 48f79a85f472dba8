package repository

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/retry"
)

// DB is what the PostgreSQL adapters need of a database handle.
// *pgxpool.Pool implements it (and so does *pgx.Conn, for single-goroutine
// use).
type DB interface {
	Beginner
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Beginner starts transactions: *pgxpool.Pool, *pgx.Conn and pgx.Tx (a
// savepoint) implement it.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// PostgresConfig configures a [*Postgres] repository. A nil config means the
// defaults.
type PostgresConfig[A aggregate.Aggregate] struct {
	// Tables names the tables; they must have been created by [Migrate]
	// with the same names. The zero value means "aggregates" and
	// "aggregate_keys" in the connection's search_path.
	Tables Tables

	// Retry, if set, makes Update re-run its whole load → fn → save cycle
	// when the save loses a race with another writer
	// ([aggregate.ErrConcurrencyConflict]), each time with a freshly loaded
	// aggregate, so fn must act only on the aggregate it is given. Zero
	// fields of the policy mean 3 attempts, a BaseDelay of 10ms and a
	// MaxDelay of 1s. nil means Update returns the conflict at once (to
	// retry at another level, such as the cqrs retry middleware; do not
	// stack both).
	Retry *retry.Policy

	// LockOnUpdate makes Update (and UpdateTx) read the row with SELECT
	// ... FOR NO KEY UPDATE, so that concurrent updates of one aggregate
	// wait for each other instead of failing with a conflict at save. The
	// price is a row lock held while fn runs; keep fn free of slow calls.
	// Load and Save are not affected, and a Save racing an Update can
	// still conflict.
	LockOnUpdate bool

	// AfterSave, if set, runs inside the saving transaction after the
	// state and the events are written and before the commit: the place
	// to maintain a read model or lookup table that must never disagree
	// with the aggregate. An error rolls the whole save back and is
	// returned wrapped.
	AfterSave func(ctx context.Context, tx pgx.Tx, a A) error

	// Options are applied, through [aggregate.Restore], to every
	// aggregate this repository loads (Load, LoadByKey, Update and their
	// Tx forms) after [Mapping.Decode] has built it. Typically
	// aggregate.WithClock(clock), so that events recorded after a load
	// are stamped by the same clock as those of a new aggregate (a fake
	// one in tests). The metadata of the request's context
	// ([aggregate.MetadataFromContext]) is applied after them; fields it
	// leaves empty are filled from an [aggregate.WithMetadata] given here.
	// nil entries are ignored.
	Options []aggregate.Option
}

// Postgres is the PostgreSQL adapter of [Repository]. It keeps every
// aggregate of its [Mapping.Type] as one row of the state table (see
// [Migrate]): type, ID, version, state (jsonb) and timestamps. [Postgres.Save]
// writes the row and the aggregate's uncommitted events, through an
// [OutboxWriter], in one transaction, with optimistic concurrency on the
// version:
//
//   - a new aggregate (committed version 0) is inserted; if the ID exists
//     already, the save fails with an [*aggregate.AlreadyExistsError]
//     ([aggregate.ErrAlreadyExists], which no retry can cure);
//   - a loaded aggregate is updated only if the row still has the version
//     it was loaded at; otherwise the save fails with an
//     [*aggregate.ConflictError] and the transaction is rolled back, so
//     no event of a stale save ever reaches the outbox.
//
// Every method that writes has a Tx form that joins a transaction the
// caller owns; see [Transact]. A Postgres is safe for concurrent use.
type Postgres[A aggregate.Aggregate] struct {
	db        DB
	outbox    OutboxWriter
	mapping   Mapping[A]
	retry     retryPolicy
	lock      bool
	afterSave func(ctx context.Context, tx pgx.Tx, a A) error
	options   []aggregate.Option

	sqlLoad, sqlLoadLock, sqlLoadByKey string
	sqlInsert, sqlUpdate, sqlVersion   string
	sqlKeys                            string
}

// NewPostgres returns a repository for the aggregates that mapping
// describes, storing them through db (usually a *pgxpool.Pool) and their
// events through outbox (usually an *outbox.Store). A nil cfg means the
// defaults. It does not touch the database; run [Migrate] once at start-up.
func NewPostgres[A aggregate.Aggregate](db DB, outbox OutboxWriter, mapping Mapping[A], cfg *PostgresConfig[A]) (*Postgres[A], error) {
	if cfg == nil {
		cfg = &PostgresConfig[A]{}
	}
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("repository: NewPostgres: db is nil"))
	}
	if outbox == nil {
		errs = append(errs, errors.New("repository: NewPostgres: outbox is nil"))
	}
	errs = append(errs, mapping.validate())
	rp, err := newRetryPolicy(cfg.Retry, "PostgresConfig.Retry")
	errs = append(errs, err)
	names, err := cfg.Tables.names()
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	state, keys := names.state, names.keys
	return &Postgres[A]{
		db:        db,
		outbox:    outbox,
		mapping:   mapping,
		retry:     rp,
		lock:      cfg.LockOnUpdate,
		afterSave: cfg.AfterSave,
		options:   slices.Clone(cfg.Options),

		sqlLoad:     `SELECT version, state FROM ` + state + ` WHERE type = $1 AND id = $2`,
		sqlLoadLock: `SELECT version, state FROM ` + state + ` WHERE type = $1 AND id = $2 FOR NO KEY UPDATE`,
		sqlLoadByKey: `SELECT s.id, s.version, s.state FROM ` + keys + ` k JOIN ` + state + ` s ON s.type = k.type AND s.id = k.id` +
			` WHERE k.type = $1 AND k.name = $2 AND k.value = $3`,
		sqlInsert:  `INSERT INTO ` + state + ` (type, id, version, state) VALUES ($1, $2, $3, $4) ON CONFLICT (type, id) DO NOTHING`,
		sqlUpdate:  `UPDATE ` + state + ` SET version = $4, state = $5, updated_at = now() WHERE type = $1 AND id = $2 AND version = $3`,
		sqlVersion: `SELECT version FROM ` + state + ` WHERE type = $1 AND id = $2`,
		// One statement replaces the aggregate's keys and returns the
		// wanted keys it could not take because another aggregate holds
		// them. ON CONFLICT DO NOTHING waits for a concurrent writer of the
		// same key and then skips, so RETURNING is the authority on what
		// this transaction holds, also under concurrency.
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

// Load returns the aggregate with the given ID, decoded from its row, with
// [PostgresConfig.Options] and the metadata of ctx
// ([aggregate.MetadataFromContext]) applied to its root, so that events it
// records carry the configured clock and the request's correlation and
// causation IDs. A missing row gives an error wrapping
// [aggregate.ErrNotFound].
func (r *Postgres[A]) Load(ctx context.Context, id string) (A, error) {
	return r.load(ctx, r.db, r.sqlLoad, id)
}

// LoadTx is [Postgres.Load] inside the caller's transaction.
func (r *Postgres[A]) LoadTx(ctx context.Context, tx pgx.Tx, id string) (A, error) {
	return r.load(ctx, tx, r.sqlLoad, id)
}

type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (r *Postgres[A]) load(ctx context.Context, q queryRower, sql, id string) (A, error) {
	var zero A
	var version int64
	var state []byte
	if err := q.QueryRow(ctx, sql, r.mapping.Type, id).Scan(&version, &state); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			err = aggregate.ErrNotFound
		}
		return zero, fmt.Errorf("repository: load %s %s: %w", r.mapping.Type, id, err)
	}
	return r.decode(ctx, id, version, state)
}

// LoadByKey returns the aggregate that holds the unique key name=value (see
// [Mapping.Keys]), like Load. None gives an error wrapping
// [aggregate.ErrNotFound].
func (r *Postgres[A]) LoadByKey(ctx context.Context, name, value string) (A, error) {
	return r.loadByKey(ctx, r.db, name, value)
}

// LoadByKeyTx is [Postgres.LoadByKey] inside the caller's transaction.
func (r *Postgres[A]) LoadByKeyTx(ctx context.Context, tx pgx.Tx, name, value string) (A, error) {
	return r.loadByKey(ctx, tx, name, value)
}

func (r *Postgres[A]) loadByKey(ctx context.Context, q queryRower, name, value string) (A, error) {
	var zero A
	var id string
	var version int64
	var state []byte
	if err := q.QueryRow(ctx, r.sqlLoadByKey, r.mapping.Type, name, value).Scan(&id, &version, &state); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			err = aggregate.ErrNotFound
		}
		return zero, fmt.Errorf("repository: load %s by %s: %w", r.mapping.Type, name, err)
	}
	return r.decode(ctx, id, version, state)
}

func (r *Postgres[A]) decode(ctx context.Context, id string, version int64, state []byte) (A, error) {
	return r.mapping.decode(id, version, state, loadOptions(ctx, r.options)...)
}

// Save writes a's state and its uncommitted events in one transaction and,
// after the commit, marks a committed. A stale version gives an
// [*aggregate.ConflictError], a new aggregate whose ID is taken an
// [*aggregate.AlreadyExistsError], a taken key a [*DuplicateKeyError], a
// failing outbox or [PostgresConfig.AfterSave] its error; in each case the
// transaction is rolled back and a is left as it was, so it can be saved
// again. Events lacking metadata get it from ctx. An aggregate without
// uncommitted events is not written at all (its state changes only through
// events).
func (r *Postgres[A]) Save(ctx context.Context, a A) error {
	return save(ctx, r.db, r.mapping.Type, a, r.write)
}

// SaveTx is [Postgres.Save] inside the caller's transaction: it writes the
// state and the events through tx and leaves the commit to the caller.
//
// Because the commit is not SaveTx's to see, it cannot mark a committed.
// When tx comes from [Transact], Transact does that after a successful
// commit (and an aggregate may then be saved more than once in the
// transaction). With a transaction of your own, call
// [aggregate.MarkCommitted](a) after tx.Commit succeeds, and do not
// save the same aggregate twice in it.
//
// After an error, roll tx back (Transact does): a save that failed, a
// conflicting one included, may have written part of its rows through tx.
func (r *Postgres[A]) SaveTx(ctx context.Context, tx pgx.Tx, a A) error {
	return saveInTx(ctx, tx, r.mapping.Type, a, r.write)
}

// write stores state, keys and the events after version base through tx.
// A deadlock or serialization failure on the way is reported as a
// concurrency conflict, since re-running the save is the remedy.
func (r *Postgres[A]) write(ctx context.Context, tx pgx.Tx, root *aggregate.Root, a A, base int64) error {
	return conflictOr(r.writeTx(ctx, tx, root, a, base), r.mapping.Type, root.ID(), base)
}

func (r *Postgres[A]) writeTx(ctx context.Context, tx pgx.Tx, root *aggregate.Root, a A, base int64) error {
	typ, id, version := r.mapping.Type, root.ID(), root.Version()
	state, err := r.mapping.encode(root, a)
	if err != nil {
		return err
	}
	sql, args := r.sqlUpdate, []any{typ, id, base, version, state}
	if base == 0 {
		sql, args = r.sqlInsert, []any{typ, id, version, state}
	}

	var rows int64
	if r.mapping.Keys == nil {
		tag, err := tx.Exec(ctx, sql, args...)
		if err != nil {
			return fmt.Errorf("repository: save %s %s: %w", typ, id, err)
		}
		rows = tag.RowsAffected()
	} else {
		var taken []Key
		rows, taken, err = r.writeWithKeys(ctx, tx, sql, args, id, r.mapping.keysOf(a))
		if err != nil {
			return err
		}
		if rows == 1 && len(taken) > 0 {
			return &DuplicateKeyError{Type: typ, ID: id, Key: taken[0]}
		}
	}
	if rows != 1 && base == 0 {
		return &aggregate.AlreadyExistsError{Type: typ, ID: id}
	}
	if rows != 1 {
		actual := int64(0)
		if err := tx.QueryRow(ctx, r.sqlVersion, typ, id).Scan(&actual); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			actual = -1
		}
		return &aggregate.ConflictError{Type: typ, ID: id, Expected: base, Actual: actual}
	}

	events := pendingEvents(ctx, root)
	if base != root.CommittedVersion() {
		// Saved before in this transaction (see Transact): only the
		// events recorded since then are new.
		events = events[base-root.CommittedVersion():]
	}
	if err := r.outbox.Write(ctx, tx, events...); err != nil {
		return fmt.Errorf("repository: save %s %s: write events to outbox: %w", typ, id, err)
	}
	if r.afterSave != nil {
		if err := r.afterSave(ctx, tx, a); err != nil {
			return fmt.Errorf("repository: save %s %s: after save: %w", typ, id, err)
		}
	}
	return nil
}

// writeWithKeys sends the state statement and the keys statement in one
// round trip and returns the rows the first affected and the keys the
// second could not take.
func (r *Postgres[A]) writeWithKeys(ctx context.Context, tx pgx.Tx, sql string, args []any, id string, keys []Key) (int64, []Key, error) {
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
	var taken []Key
	rows, err := br.Query()
	if err == nil {
		taken, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Key, error) {
			var k Key
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

// Update loads the aggregate, runs fn on it and saves it, in one
// transaction, and marks it committed after the commit. An error from fn
// is returned unchanged and the transaction is rolled back. A concurrency
// conflict is retried as [PostgresConfig.Retry] says, each attempt in a new
// transaction with a freshly loaded aggregate and a new call of fn. With
// [PostgresConfig.LockOnUpdate] the row is locked when read.
func (r *Postgres[A]) Update(ctx context.Context, id string, fn func(A) error) error {
	return update(ctx, r.db, r.retry, r.mapping.Type, id, fn, r.updateTx)
}

// UpdateTx is [Postgres.Update] inside the caller's transaction: load, fn,
// [Postgres.SaveTx]. It never retries; on a conflict, roll back and run the
// whole transaction again.
func (r *Postgres[A]) UpdateTx(ctx context.Context, tx pgx.Tx, id string, fn func(A) error) error {
	return updateInTx(ctx, tx, r.mapping.Type, id, fn, r.updateTx)
}

func (r *Postgres[A]) updateTx(ctx context.Context, tx pgx.Tx, id string, fn func(A) error) (A, error) {
	sql := r.sqlLoad
	if r.lock {
		sql = r.sqlLoadLock
	}
	a, err := r.load(ctx, tx, sql, id)
	if err != nil {
		return a, conflictOr(err, r.mapping.Type, id, -1)
	}
	if err := fn(a); err != nil {
		return a, err
	}
	root := a.AggregateRoot()
	if !root.HasChanges() {
		return a, nil
	}
	return a, r.write(ctx, tx, root, a, root.CommittedVersion())
}

// conflictOr returns err, or, if err is caused by a deadlock or a
// serialization failure (SQLSTATE 40P01, 40001: PostgreSQL aborted the
// transaction because of a concurrent one), an error that is also an
// [*aggregate.ConflictError], so that Update's retry and the cqrs retry
// middleware run the save again.
func conflictOr(err error, typ, id string, expected int64) error {
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || (pgErr.Code != "40P01" && pgErr.Code != "40001") {
		return err
	}
	var ce *aggregate.ConflictError
	if errors.As(err, &ce) {
		return err
	}
	return fmt.Errorf("%w: %w", &aggregate.ConflictError{Type: typ, ID: id, Expected: expected, Actual: -1}, err)
}

// rollback ends tx if it is still open; after a commit it does nothing.
func rollback(ctx context.Context, tx pgx.Tx) {
	_ = tx.Rollback(context.WithoutCancel(ctx))
}

var (
	_ Repository[aggregate.Aggregate] = (*Postgres[aggregate.Aggregate])(nil)
	_ KeyLoader[aggregate.Aggregate]  = (*Postgres[aggregate.Aggregate])(nil)
)
