package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/process"
)

// ProcessStoreConfig configures a [ProcessStore]. The zero value (or
// nil) is usable: the default tables.
type ProcessStoreConfig struct {
	// Tables names the tables: Tables.Processes holds the instances and
	// Tables.Inbox records the applied events. Give it the Tables that
	// [Migrate] got.
	Tables Tables
	// Inbox configures the inbox the store records events in (its
	// Tables field is ignored: Tables above names the inbox). Its
	// retention bounds how late a duplicate is still recognised.
	Inbox InboxConfig
}

// Validate reports every problem of the configuration at once.
func (c *ProcessStoreConfig) Validate() error {
	if c == nil {
		return nil
	}
	return errors.Join(c.Tables.Validate(), c.Inbox.Validate())
}

// ProcessStore is the [process.Store] in PostgreSQL: the state of each
// process instance is a row of Tables.Processes (state as jsonb, an
// ended flag), and every applied event a row of the inbox. Apply runs
// in a [UnitOfWork] (the one in ctx, or its own): the inbox row, the
// instance's row, and whatever the handler does with the context it is
// given (commands whose repositories join the unit, deadlines written by
// [Outbox.Schedule], postgres.TxFromContext) commit together or not at
// all. An instance is locked for the transaction (an advisory lock on
// its process and key), so events of one instance arriving on several
// topics at once apply one after the other.
//
// Instances that ended keep their row (so that later events are
// recognised and ignored); delete old ended rows yourself if they pile
// up. Create it with [NewProcessStore]; migrate first with [Migrate].
type ProcessStore struct {
	db    DB
	inbox *Inbox
	table string
	load  string
	save  string
}

var _ process.Store = (*ProcessStore)(nil)

// NewProcessStore returns the process store in db's tables (cfg nil =
// defaults). It does not touch the database.
func NewProcessStore(db DB, cfg *ProcessStoreConfig) (*ProcessStore, error) {
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("postgres: NewProcessStore: nil DB"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := ProcessStoreConfig{}
	if cfg != nil {
		c = *cfg
	}
	n, err := newNames(&c.Tables)
	if err != nil {
		return nil, err
	}
	icfg := c.Inbox
	icfg.Tables = c.Tables
	inbox, err := NewInbox(db, &icfg)
	if err != nil {
		return nil, err
	}
	t := n.q(n.t.Processes)
	return &ProcessStore{
		db:    db,
		inbox: inbox,
		table: t,
		load:  `SELECT state, ended FROM ` + t + ` WHERE process = $1 AND key = $2`,
		save: `INSERT INTO ` + t + ` (process, key, state, ended) VALUES ($1, $2, $3, $4)
ON CONFLICT (process, key) DO UPDATE SET state = excluded.state, ended = excluded.ended, updated_at = now()`,
	}, nil
}

// Apply implements [process.Store].
func (s *ProcessStore) Apply(ctx context.Context, proc, key string, env aggregate.Envelope, fn func(ctx context.Context, inst *process.Instance) error) (bool, error) {
	if proc == "" || key == "" {
		return false, eventbus.Permanent(errors.New("postgres: process store: empty process name or key"))
	}
	if fn == nil {
		return false, eventbus.Permanent(errors.New("postgres: process store: nil function"))
	}
	return s.inbox.Process(ctx, proc, env, func(ctx context.Context) error {
		q := querier(ctx, s.db)
		b := &pgx.Batch{}
		b.Queue(`SELECT pg_advisory_xact_lock($1)`, int64(hash64("dddkit/process/"+s.table+"/"+proc+"/"+key))) // a hash: wrapping is intended
		b.Queue(s.load, proc, key)
		br := q.SendBatch(ctx, b)
		var inst process.Instance
		_, err := br.Exec()
		if err == nil {
			err = br.QueryRow().Scan(&inst.State, &inst.Ended)
			if errors.Is(err, pgx.ErrNoRows) {
				err = nil
			}
		}
		if cerr := br.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("postgres: process %q: load %q: %w", proc, key, err)
		}
		if err := fn(ctx, &inst); err != nil {
			return err
		}
		if inst.State == nil {
			return nil
		}
		if _, err := q.Exec(ctx, s.save, proc, key, inst.State, inst.Ended); err != nil {
			return fmt.Errorf("postgres: process %q: save %q: %w", proc, key, err)
		}
		return nil
	})
}

// Load implements [process.Store].
func (s *ProcessStore) Load(ctx context.Context, proc, key string) (process.Instance, bool, error) {
	var inst process.Instance
	err := querier(ctx, s.db).QueryRow(ctx, s.load, proc, key).Scan(&inst.State, &inst.Ended)
	if errors.Is(err, pgx.ErrNoRows) {
		return process.Instance{}, false, nil
	}
	if err != nil {
		return process.Instance{}, false, fmt.Errorf("postgres: process %q: load %q: %w", proc, key, err)
	}
	return inst, true, nil
}
