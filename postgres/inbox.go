package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/check"
	"github.com/dddkit/dddkit/internal/telemetry"
)

// Inbox defaults.
const (
	DefaultInboxRetention       = 7 * 24 * time.Hour
	DefaultInboxCleanupInterval = time.Hour
	DefaultInboxCleanupBatch    = 10000
)

// InboxConfig configures an [Inbox]. The zero value (or nil) is usable:
// the default table, rows kept for a week.
type InboxConfig struct {
	// Tables names the tables; Tables.Inbox is this inbox. Give it the
	// Tables that [Migrate] got.
	Tables Tables

	// Retention is how long the row of a handled event is kept. A
	// duplicate that arrives after its row was cleaned up is applied
	// again, so keep it longer than any redelivery can take (the Kafka
	// retention of the topic is a safe upper bound). 0 means 7 days.
	Retention time.Duration

	// CleanupInterval is how often [Inbox.RunCleanup] deletes expired
	// rows. 0 means one hour.
	CleanupInterval time.Duration

	// CleanupBatch is how many rows one DELETE removes at most, so that
	// cleanup never holds long locks. 0 means 10000.
	CleanupBatch int

	// Logger receives duplicate (debug) and cleanup log lines; nil
	// discards them.
	Logger *slog.Logger
}

// Validate reports every problem of the configuration at once.
func (c *InboxConfig) Validate() error {
	if c == nil {
		return nil
	}
	e := check.New("postgres: InboxConfig")
	e.Add(c.Tables.Validate())
	check.NotNegative(e, "Retention", c.Retention)
	check.NotNegative(e, "CleanupInterval", c.CleanupInterval)
	check.NotNegative(e, "CleanupBatch", c.CleanupBatch)
	return e.Err()
}

// Inbox is the [eventbus.Inbox] in PostgreSQL: a table keyed by (handler
// name, event ID) whose row is written in a [UnitOfWork] together with the
// handler's effects. The handler's context carries that unit of work:
// repositories called with it join it, and [TxFromContext] returns its
// transaction for the handler's own statements (a River job inserted with
// InsertTx), so the effects and the inbox row commit together or not at
// all. When the context passed in already carries a unit of work, the
// inbox joins it instead of beginning one (as [UnitOfWork.Do] does).
//
// The table is created by [Migrate]; rows older than
// [InboxConfig.Retention] are deleted by [Inbox.Cleanup] (run
// [Inbox.RunCleanup] in the background). Create an Inbox with [NewInbox].
type Inbox struct {
	db     DB
	uow    *UnitOfWork
	cfg    InboxConfig
	log    *slog.Logger
	table  string // quoted, qualified when Tables.Schema is set
	insert string
	batch  string // skips the rows that exist and returns the new ones
	fresh  string // fails on a row that exists (cheaper: no speculative insertion)
	clean  string

	// wary holds the handlers whose last batch had an event recorded
	// before: their next batch skips duplicates from the start instead
	// of trying the cheaper insert first.
	wary sync.Map // handler name → struct{}
}

var _ eventbus.Inbox = (*Inbox)(nil)

// NewInbox returns the inbox in db's tables (cfg nil = defaults). It does
// not touch the database.
func NewInbox(db DB, cfg *InboxConfig) (*Inbox, error) {
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("postgres: NewInbox: nil DB"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := InboxConfig{}
	if cfg != nil {
		c = *cfg
	}
	if c.Retention == 0 {
		c.Retention = DefaultInboxRetention
	}
	if c.CleanupInterval == 0 {
		c.CleanupInterval = DefaultInboxCleanupInterval
	}
	if c.CleanupBatch == 0 {
		c.CleanupBatch = DefaultInboxCleanupBatch
	}
	log := c.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n, err := newNames(&c.Tables)
	if err != nil {
		return nil, err
	}
	t := n.q(n.t.Inbox)
	return &Inbox{
		db:    db,
		uow:   &UnitOfWork{db: db},
		cfg:   c,
		log:   log,
		table: t,
		insert: `INSERT INTO ` + t + ` (handler, event_id, event_name) VALUES ($1, $2, $3)
ON CONFLICT (handler, event_id) DO NOTHING`,
		batch: `INSERT INTO ` + t + ` (handler, event_id, event_name)
SELECT $1, e.id, e.name FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS e (id, name, n)
ORDER BY e.n
ON CONFLICT (handler, event_id) DO NOTHING
RETURNING event_id`,
		fresh: `INSERT INTO ` + t + ` (handler, event_id, event_name)
SELECT $1, e.id, e.name FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS e (id, name, n)
ORDER BY e.n`,
		clean: `DELETE FROM ` + t + ` WHERE ctid = ANY (ARRAY (
	SELECT ctid FROM ` + t + ` WHERE processed_at < now() - make_interval(secs => $1) LIMIT $2))`,
	}, nil
}

// Process implements [eventbus.Inbox]: in one unit of work (the one in
// ctx, or a new one) it inserts the row (handler, env.ID) and, only if
// that row is new, calls fn with the unit's context and commits. A
// database that cannot be reached, or is not migrated, gives an error
// wrapping [eventbus.ErrUnavailable], so the event waits.
func (i *Inbox) Process(ctx context.Context, handler string, env aggregate.Envelope, fn func(ctx context.Context) error) (applied bool, err error) {
	ctx, span := telemetry.StartInbox(ctx, handler, 1)
	defer func() { telemetry.End(span, err) }()
	if handler == "" || env.ID == "" {
		return false, eventbus.Permanent(fmt.Errorf("postgres: inbox: need a handler name and an event ID, got %q and %q (event %s)", handler, env.ID, env.Name))
	}
	began := false
	err = i.uow.Do(ctx, func(ctx context.Context) error {
		began = true
		tag, err := querier(ctx, i.db).Exec(ctx, i.insert, handler, env.ID, env.Name)
		if err != nil {
			return i.wrap(fmt.Errorf("postgres: inbox: record %s %s: %w", handler, env.ID, err))
		}
		if tag.RowsAffected() == 0 {
			i.log.LogAttrs(ctx, slog.LevelDebug, "postgres: inbox: duplicate event skipped",
				slog.String("handler", handler), slog.String("event", env.Name), slog.String("event_id", env.ID))
			return nil
		}
		if err := fn(ctx); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil {
		if !began || errors.Is(err, errBegin) {
			err = fmt.Errorf("postgres: inbox: %w: %w", eventbus.ErrUnavailable, err)
		}
		return false, err
	}
	return applied, nil
}

// ProcessBatch implements [eventbus.Inbox]: in one unit of work it inserts
// the rows of every event with one statement, calls fn with the events
// whose rows are new, and sends the statements fn queued with
// [QueueExec] with the COMMIT (on a pool, in one round trip).
//
// A batch in a unit of work of its own first inserts its rows as if all
// were new: a plain insert costs PostgreSQL less than half of one that
// skips the rows that exist (ON CONFLICT DO NOTHING). When a row exists
// (a redelivery), that unit rolls back before fn ran and the batch runs
// again, skipping the rows that exist; the handler's next batch does so
// from the start, until a batch has no duplicate. A batch that joins a
// unit of work in ctx always skips them, as its failure would end that
// unit.
func (i *Inbox) ProcessBatch(ctx context.Context, handler string, envs []aggregate.Envelope, fn func(ctx context.Context, fresh []aggregate.Envelope) error) (err error) {
	ctx, span := telemetry.StartInbox(ctx, handler, len(envs))
	defer func() { telemetry.End(span, err) }()
	byID := make(map[string]string, len(envs)) // event ID → name
	for _, env := range envs {
		if handler == "" || env.ID == "" {
			return eventbus.Permanent(fmt.Errorf("postgres: inbox: need a handler name and an event ID, got %q and %q (event %s)", handler, env.ID, env.Name))
		}
		byID[env.ID] = env.Name
	}
	if len(byID) == 0 {
		return nil
	}
	// Rows are inserted in ID order, so that two batches with common
	// events wait for each other instead of deadlocking.
	ids := slices.Sorted(maps.Keys(byID))
	names := make([]string, len(ids))
	for k, id := range ids {
		names[k] = byID[id]
	}
	_, wary := i.wary.Load(handler)
	optimistic := !wary && unitFrom(ctx) == nil
	began := false
	for {
		began = false
		err = i.uow.Do(ctx, func(ctx context.Context) error {
			began = true
			var fresh []aggregate.Envelope
			var err error
			if optimistic {
				fresh, err = i.recordAll(ctx, handler, envs, ids, names)
			} else {
				fresh, err = i.recordNew(ctx, handler, envs, ids, names)
			}
			if err != nil || len(fresh) == 0 {
				return err
			}
			return queued(ctx, func(ctx context.Context) error { return fn(ctx, fresh) })
		})
		if optimistic && errors.Is(err, errRecorded) {
			i.wary.Store(handler, struct{}{})
			optimistic = false
			continue
		}
		break
	}
	if err != nil && (!began || errors.Is(err, errBegin)) {
		return fmt.Errorf("postgres: inbox: %w: %w", eventbus.ErrUnavailable, err)
	}
	return err
}

// errRecorded is returned by recordAll when an event of the batch has a
// row: the batch runs again with recordNew.
var errRecorded = errors.New("postgres: inbox: an event of the batch was recorded before")

// recordAll inserts a row for every event, failing with errRecorded if
// one exists; it returns the events in batch order, each ID once.
func (i *Inbox) recordAll(ctx context.Context, handler string, envs []aggregate.Envelope, ids, names []string) ([]aggregate.Envelope, error) {
	if _, err := querier(ctx, i.db).Exec(ctx, i.fresh, handler, ids, names); err != nil {
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "23505" { // unique_violation
			return nil, errRecorded
		}
		return nil, i.wrap(fmt.Errorf("postgres: inbox: record %d events of %s: %w", len(ids), handler, err))
	}
	all := make(map[string]bool, len(ids))
	for _, id := range ids {
		all[id] = true
	}
	return inBatchOrder(envs, all), nil
}

// inBatchOrder returns the events of envs whose IDs are in ids, in batch
// order, each ID once (a second copy in the batch is a duplicate). It
// empties ids.
func inBatchOrder(envs []aggregate.Envelope, ids map[string]bool) []aggregate.Envelope {
	out := make([]aggregate.Envelope, 0, len(ids))
	for _, env := range envs {
		if ids[env.ID] {
			delete(ids, env.ID)
			out = append(out, env)
		}
	}
	return out
}

// recordNew inserts the rows of the events that have none and returns
// those events in batch order, each ID once. A batch without duplicates
// lets the handler's next batch try recordAll again.
func (i *Inbox) recordNew(ctx context.Context, handler string, envs []aggregate.Envelope, ids, names []string) ([]aggregate.Envelope, error) {
	rows, err := querier(ctx, i.db).Query(ctx, i.batch, handler, ids, names)
	if err != nil {
		return nil, i.wrap(fmt.Errorf("postgres: inbox: record %d events of %s: %w", len(ids), handler, err))
	}
	isNew := make(map[string]bool, len(ids))
	var id string
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error {
		isNew[id] = true
		return nil
	}); err != nil {
		return nil, i.wrap(fmt.Errorf("postgres: inbox: record %d events of %s: %w", len(ids), handler, err))
	}
	fresh := inBatchOrder(envs, isNew)
	if skipped := len(ids) - len(fresh); skipped > 0 {
		i.log.LogAttrs(ctx, slog.LevelDebug, "postgres: inbox: duplicate events skipped",
			slog.String("handler", handler), slog.Int("events", skipped))
	} else {
		i.wary.Delete(handler)
	}
	return fresh, nil
}

// wrap marks an error about a missing inbox table as [ErrNotMigrated]
// and [eventbus.ErrUnavailable]: the events wait until the database is
// migrated instead of going to the dead-letter topic.
func (i *Inbox) wrap(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return fmt.Errorf("%w: %w: %w", ErrNotMigrated, eventbus.ErrUnavailable, err)
	}
	return err
}

// Cleanup deletes the rows older than [InboxConfig.Retention], in batches
// of [InboxConfig.CleanupBatch], and returns how many it deleted.
func (i *Inbox) Cleanup(ctx context.Context) (int64, error) {
	var total int64
	secs := i.cfg.Retention.Seconds()
	for {
		tag, err := i.db.Exec(ctx, i.clean, secs, i.cfg.CleanupBatch)
		if err != nil {
			return total, i.wrap(fmt.Errorf("postgres: inbox cleanup: %w", err))
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < int64(i.cfg.CleanupBatch) {
			return total, nil
		}
	}
}

// RunCleanup deletes expired rows every [InboxConfig.CleanupInterval]
// until ctx ends, then returns nil. Failures are logged and tried again at
// the next tick. Run it in one goroutine per process (several replicas
// running it at once is harmless).
func (i *Inbox) RunCleanup(ctx context.Context) error {
	t := time.NewTicker(i.cfg.CleanupInterval)
	defer t.Stop()
	for {
		n, err := i.Cleanup(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			i.log.LogAttrs(ctx, slog.LevelError, "postgres: inbox cleanup failed", slog.Any("error", err))
		case n > 0:
			i.log.LogAttrs(ctx, slog.LevelInfo, "postgres: inbox cleanup", slog.Int64("deleted", n))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
