package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultInboxTable is the inbox table's name unless [InboxConfig.Table]
// says otherwise.
const DefaultInboxTable = "dddkit_inbox"

// InboxConfig configures an [Inbox]. The zero value and nil are the
// defaults.
type InboxConfig struct {
	// Table is the inbox table, optionally schema-qualified
	// ("app.inbox"). "" means [DefaultInboxTable]; an unqualified name is
	// resolved through the connection's search_path.
	Table string

	// Retention is how long a handled event's row is kept. A duplicate
	// that arrives after its row was cleaned up is applied again, so keep
	// it longer than any redelivery can take (Kafka's retention of the
	// topic is a safe upper bound). 0 means 7 days.
	Retention time.Duration

	// CleanupInterval is how often [Inbox.RunCleanup] deletes expired
	// rows. 0 means one hour.
	CleanupInterval time.Duration

	// CleanupBatch is how many rows one DELETE removes at most, so that
	// cleanup never holds long locks. 0 means 10000.
	CleanupBatch int

	// Logger receives duplicate and cleanup log lines; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Validate reports every problem of c at once.
func (c *InboxConfig) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	if c.Table != "" {
		for _, part := range strings.Split(c.Table, ".") {
			if part == "" {
				errs = append(errs, fmt.Errorf("eventbus: InboxConfig.Table %q: empty name part", c.Table))
				break
			}
		}
		if strings.Count(c.Table, ".") > 1 {
			errs = append(errs, fmt.Errorf("eventbus: InboxConfig.Table %q: want table or schema.table", c.Table))
		}
	}
	if c.Retention < 0 {
		errs = append(errs, fmt.Errorf("eventbus: InboxConfig.Retention is %s, must be >= 0", c.Retention))
	}
	if c.CleanupInterval < 0 {
		errs = append(errs, fmt.Errorf("eventbus: InboxConfig.CleanupInterval is %s, must be >= 0", c.CleanupInterval))
	}
	if c.CleanupBatch < 0 {
		errs = append(errs, fmt.Errorf("eventbus: InboxConfig.CleanupBatch is %d, must be >= 0", c.CleanupBatch))
	}
	return errors.Join(errs...)
}

// Inbox makes event handlers idempotent: it remembers, per handler name,
// the IDs of the events whose effects have been committed, in a
// PostgreSQL table (see [Inbox.Migrate]) written in the handler's own
// transaction. [HandleTx] uses it; [Inbox.Process] is the same for
// consumers outside a [Router].
type Inbox struct {
	db     DB
	cfg    InboxConfig
	logger *slog.Logger
	sql    inboxSQL
}

// NewInbox returns an inbox on db (a *pgxpool.Pool, typically). It does
// not touch the database; call [Inbox.Migrate] once at start-up. A nil cfg
// means the defaults.
func NewInbox(db DB, cfg *InboxConfig) (*Inbox, error) {
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("eventbus: NewInbox: nil DB"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := InboxConfig{}
	if cfg != nil {
		c = *cfg
	}
	if c.Table == "" {
		c.Table = DefaultInboxTable
	}
	if c.Retention == 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.CleanupInterval == 0 {
		c.CleanupInterval = time.Hour
	}
	if c.CleanupBatch == 0 {
		c.CleanupBatch = 10000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return &Inbox{db: db, cfg: c, logger: c.Logger, sql: newInboxSQL(c.Table)}, nil
}

// Table returns the (quoted) name of the inbox table.
func (i *Inbox) Table() string { return i.sql.table }

// Process runs fn for the event md under handler name exactly once: in one
// transaction it inserts the inbox row (handler, md.EventID) and, only if
// that row is new, calls fn and commits. applied is false when the event
// had already been processed by this handler; then fn did not run and
// nothing was written. An error of fn rolls back the inbox row too, so a
// retry runs fn again. A failure to begin the transaction (the database
// cannot be reached) wraps [ErrUnavailable].
func (i *Inbox) Process(ctx context.Context, handler string, md Metadata, fn func(ctx context.Context, tx pgx.Tx) error) (applied bool, err error) {
	if handler == "" || md.EventID == "" {
		return false, Permanent(fmt.Errorf("eventbus: inbox: need a handler name and an event ID, got %q and %q", handler, md.EventID))
	}
	tx, err := i.db.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("eventbus: inbox: begin: %w: %w", ErrUnavailable, err)
	}
	defer func() {
		if !applied || err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	tag, err := tx.Exec(ctx, i.sql.insert, handler, md.EventID, md.EventName)
	if err != nil {
		return false, fmt.Errorf("eventbus: inbox: record %s %s: %w", handler, md.EventID, err)
	}
	if tag.RowsAffected() == 0 {
		i.logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: duplicate event skipped",
			slog.String("handler", handler), slog.String("event", md.EventName), slog.String("event_id", md.EventID))
		return false, nil
	}
	if err := fn(ctx, tx); err != nil {
		return false, err
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("eventbus: inbox: commit %s %s: %w", handler, md.EventID, err)
	}
	return true, nil
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
			i.logger.LogAttrs(ctx, slog.LevelError, "eventbus: inbox cleanup failed", slog.Any("error", err))
		case n > 0:
			i.logger.LogAttrs(ctx, slog.LevelInfo, "eventbus: inbox cleanup", slog.Int64("deleted", n))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
