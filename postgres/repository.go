package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
// [UnitOfWork]), its own otherwise, in one round trip either way (one
// statement; in a unit of work on a pool, unless the mapping has Keys,
// held back for the unit's COMMIT, whose round trip it shares, and whose
// error its failure becomes: see [Flush]). A Save or Update that fails
// inside a unit of work makes the unit roll back, so nothing is ever
// half-saved.
type Repository[A aggregate.Aggregate] struct {
	db      DB
	outbox  *Outbox
	mapping repository.Mapping[A]
	retry   aggstore.Retry
	lock    bool
	options []aggregate.Option

	sqlLoad, sqlLoadLock, sqlLoadByKey string
	sqlInsert, sqlUpdate               saveStatements
	sqlVersion                         string
	sqlHolder                          string
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
		sqlInsert:  saveSQLs(ob, `INSERT INTO `+state+` (type, id, version, state) VALUES ($1, $2, $3, $4) ON CONFLICT (type, id) DO NOTHING`, 5, mapping.Keys != nil),
		sqlUpdate:  saveSQLs(ob, `UPDATE `+state+` SET version = $4, state = $5, updated_at = now() WHERE type = $1 AND id = $2 AND version = $3`, 6, mapping.Keys != nil),
		sqlVersion: `SELECT version FROM ` + state + ` WHERE type = $1 AND id = $2`,
		sqlHolder: `SELECT k.name, k.value FROM ` + keys + ` k JOIN unnest($3::text[], $4::text[]) WITH ORDINALITY AS w(name, value, i)
	ON k.name = w.name AND k.value = w.value
WHERE k.type = $1 AND k.id <> $2 ORDER BY w.i LIMIT 1`,
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
	return update(ctx, r.db, r.retry, r.lock, r.mapping.Type, id, fn, r.load, r.write)
}

// saveStatements are the statements of one kind of save (insert or
// update): byRows[n] writes n events as a VALUES list, unnest any number
// of them from arrays.
//
// Each comes in three forms (saveForm): [formTrigger] leaves the
// notification of the relay to the outbox's trigger, [formAfter] (for a
// save on its own on a pool) tells the trigger to skip it, its writer
// notifying after the commit (notify.go), and [formHeld] (for a save in
// a unit of work on a pool, held back for the unit's COMMIT) does so too
// and fails when it writes nothing.
type saveStatements struct {
	byRows [3][valuesRows + 1]string
	unnest [3]string
}

// saveForm is the form of a save statement: see saveStatements.
type saveForm int

const (
	formTrigger saveForm = iota
	formAfter
	formHeld
)

// sql returns the statement of form that saves n events, and whether its
// outbox arguments are the insertValues ones (otherwise insertArrays).
func (s *saveStatements) sql(n int, form saveForm) (string, bool) {
	if n <= valuesRows {
		return s.byRows[form][n], true
	}
	return s.unnest[form], false
}

// saveSQLs returns the statements of the save that starts with
// stateSQL (see saveSQL): one per number of events up to valuesRows,
// and the unnest one for more, in every form (but formHeld with keys: a
// save with keys is never held back).
func saveSQLs(ob *Outbox, stateSQL string, first int, withKeys bool) saveStatements {
	var s saveStatements
	for form := range s.unnest {
		if withKeys && saveForm(form) == formHeld {
			continue
		}
		for n := range s.byRows[form] {
			s.byRows[form][n] = saveSQL(ob, stateSQL, first, n, withKeys, saveForm(form))
		}
		s.unnest[form] = saveSQL(ob, stateSQL, first, -1, withKeys, saveForm(form))
	}
	return s
}

// saveSQL is the one statement that saves an aggregate: the state
// statement (an INSERT or a version-checked UPDATE of its row, $1 its
// type, $2 its ID), then, only when that wrote the row, the outbox rows
// (from parameter first on: rows rows of insertValues arguments, or, for
// rows < 0, the insertArgs arrays of insertArrays) and, with keys, the
// keys (the arrays of names and values in the two parameters after
// them): the keys no longer wanted are deleted and the missing ones
// inserted. It returns the number of rows the state statement wrote:
// 0 writes nothing else; in formHeld, it fails instead with a division by
// zero (errWroteNothing), so that a COMMIT sent after it does not run. A
// key held by another aggregate fails the statement with a unique
// violation on the keys table. In formAfter and formHeld, the statement
// sets notifySetting once the state is written, before the outbox's
// trigger fires at its end, so that the trigger leaves the notification
// to the writer.
func saveSQL(ob *Outbox, stateSQL string, first, rows int, withKeys bool, form saveForm) string {
	var b strings.Builder
	b.WriteString("WITH s AS (" + stateSQL + " RETURNING 1)")
	next := first + insertArgs
	switch {
	case rows < 0:
		b.WriteString(",\no AS (" + ob.insertFrom(first, "EXISTS (SELECT FROM s)") + ")")
	case rows > 0:
		b.WriteString(",\no AS (" + ob.insertValuesFrom(first, rows, "EXISTS (SELECT FROM s)") + ")")
		next = first + rows*insertArgs
	default:
		next = first
	}
	if withKeys {
		keys := ob.n.q(ob.n.t.AggregateKeys)
		names, values := "$"+strconv.Itoa(next), "$"+strconv.Itoa(next+1)
		b.WriteString(`,
w AS (SELECT * FROM unnest(` + names + `::text[], ` + values + `::text[]) AS w(name, value)),
r AS (
	DELETE FROM ` + keys + ` k WHERE EXISTS (SELECT FROM s) AND k.type = $1 AND k.id = $2
	AND NOT EXISTS (SELECT FROM w WHERE w.name = k.name AND w.value = k.value)
),
i AS (
	INSERT INTO ` + keys + ` (type, name, value, id) SELECT $1, w.name, w.value, $2 FROM w
	WHERE EXISTS (SELECT FROM s)
	AND NOT EXISTS (SELECT FROM ` + keys + ` k WHERE k.type = $1 AND k.name = w.name AND k.value = w.value AND k.id = $2)
)`)
	}
	if form == formHeld {
		b.WriteString("\nSELECT 1 / count(*)::int FROM s")
	} else {
		b.WriteString("\nSELECT count(*) FROM s")
	}
	if form != formTrigger {
		b.WriteString(" WHERE set_config('" + notifySetting + "', '" + notifyAfterCommit + "', true) IS NOT NULL")
	}
	return b.String()
}

// errWroteNothing is the SQLSTATE (division_by_zero) of a formHeld save
// statement that wrote nothing: the version it expected was not found.
const errWroteNothing = "22012"

// write saves the aggregate with one statement (saveSQL). In a unit of
// work on a pool, the statement is held back (lazyTx.later) and its
// errors are the unit's: see saveInUnit.
func (r *Repository[A]) write(ctx context.Context, q DB, inTx bool, root *aggregate.Root, a A, base int64) error {
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
	stmts, args := &r.sqlUpdate, make([]any, 0, 5+insertArgs*min(len(rows), valuesRows)+2)
	if base == 0 {
		stmts, args = &r.sqlInsert, append(args, typ, id, version, state)
	} else {
		args = append(args, typ, id, base, version, state)
	}
	notifyAfter := notifiesAfterCommit(ctx, q, inTx)
	// A save with unique keys reports a taken key at once: callers turn
	// it into an error of their domain (an email address taken).
	var held *lazyTx
	if notifyAfter && r.mapping.Keys == nil {
		held = holding(q)
	}
	form := formTrigger
	switch {
	case held != nil:
		form = formHeld
	case notifyAfter:
		form = formAfter
	}
	sql, asValues := stmts.sql(len(rows), form)
	if asValues {
		args, err = insertValues(args, rows)
	} else {
		var columns []any
		columns, err = insertArrays(rows)
		args = append(args, columns...)
	}
	if err != nil {
		return fmt.Errorf("repository: save %s %s: %w", typ, id, err)
	}
	var keys []repository.Key
	if r.mapping.Keys != nil {
		keys = r.mapping.KeysOf(a)
		names, values := keyArrays(keys)
		args = append(args, names, values)
	}

	r.outbox.notifyInUnit(ctx, false)
	if held != nil {
		// In a unit of work on a pool: the statement goes out with the
		// unit's next statement or its COMMIT.
		held.later(sql, args, func(br pgx.BatchResults) error {
			var one int64
			err := br.QueryRow().Scan(&one)
			if err == nil {
				return nil
			}
			if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == errWroteNothing {
				if base == 0 {
					return &aggregate.AlreadyExistsError{Type: typ, ID: id}
				}
				// The version found is not read: the transaction is aborted.
				return &aggregate.ConflictError{Type: typ, ID: id, Expected: base, Actual: -1}
			}
			return conflictOr(fmt.Errorf("repository: save %s %s: %w", typ, id, err), typ, id, base)
		})
		return nil
	}
	var affected int64
	if err := q.QueryRow(ctx, sql, args...).Scan(&affected); err != nil {
		if key, ok := r.takenKey(ctx, q, inTx, err, id, keys); ok {
			return &repository.DuplicateKeyError{Type: typ, ID: id, Key: key}
		}
		return fmt.Errorf("repository: save %s %s: %w", typ, id, err)
	}
	if affected == 1 {
		if notifyAfter && !inTx {
			r.outbox.notifyCommitted(q, false)
		}
		return nil
	}
	if base == 0 {
		return &aggregate.AlreadyExistsError{Type: typ, ID: id}
	}
	// The statement wrote nothing, so q is still usable.
	actual := int64(0)
	if err := q.QueryRow(ctx, r.sqlVersion, typ, id).Scan(&actual); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		actual = -1
	}
	return &aggregate.ConflictError{Type: typ, ID: id, Expected: base, Actual: actual}
}

// takenKey tells whether err is the unique violation on the keys table
// that a key held by another aggregate causes, and which of keys it is:
// the one the error's detail names, or, when q is still usable (not in
// an aborted transaction), the first that another aggregate holds; the
// first of keys when neither tells.
func (r *Repository[A]) takenKey(ctx context.Context, q DB, inTx bool, err error, id string, keys []repository.Key) (repository.Key, bool) {
	var pgErr *pgconn.PgError
	if len(keys) == 0 || !errors.As(err, &pgErr) || pgErr.Code != "23505" || pgErr.TableName != r.outbox.n.t.AggregateKeys {
		return repository.Key{}, false
	}
	for _, k := range keys {
		if strings.Contains(pgErr.Detail, "=("+r.mapping.Type+", "+k.Name+", "+k.Value+")") {
			return k, true
		}
	}
	if !inTx {
		names, values := keyArrays(keys)
		var k repository.Key
		if q.QueryRow(ctx, r.sqlHolder, r.mapping.Type, id, names, values).Scan(&k.Name, &k.Value) == nil {
			return k, true
		}
	}
	return keys[0], true
}

func keyArrays(keys []repository.Key) (names, values []string) {
	names, values = make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		names[i], values[i] = k.Name, k.Value
	}
	return names, values
}

var (
	_ repository.Repository[aggregate.Aggregate] = (*Repository[aggregate.Aggregate])(nil)
	_ repository.KeyLoader[aggregate.Aggregate]  = (*Repository[aggregate.Aggregate])(nil)
)
