package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/eventbus"
)

// DeadLettersConfig configures a [DeadLetters] store. The zero value (or
// nil) is usable: the default tables.
type DeadLettersConfig struct {
	// Tables names the tables; Tables.DeadLetters and Tables.Parked are
	// this store's. Give it the Tables that [Migrate] got.
	Tables Tables
}

// Validate reports every problem of the configuration at once.
func (c *DeadLettersConfig) Validate() error {
	if c == nil {
		return nil
	}
	return c.Tables.Validate()
}

// DeadLetters is the [eventbus.DeadLetters] store in PostgreSQL: the dead
// letters of consumers (one row per handler and key) and the events each
// holds, the dead one first, in the order they arrived. Give it to
// [eventbus.RouterConfig] (DeadLetters) so
// that parked events survive restarts and every replica of a service
// sees the same parked keys; operators list and release them through it
// (see [eventbus.ReplayDeadLetter]).
//
// A consumer asks it, for each event (for each batch, with the batching
// consumer), whether the event's key is parked: one indexed query on a
// table that is usually empty.
//
// Its statements run on db, outside any unit of work in the context. The
// tables are created by [Migrate]. Create one with [NewDeadLetters].
type DeadLetters struct {
	db DB
	q  dlQueries
}

type dlQueries struct {
	add, park, parked, list, get, parkedEvents, lock, release, next, remove, fail string
}

var _ eventbus.DeadLetters = (*DeadLetters)(nil)

// NewDeadLetters returns the store in db's tables (cfg nil = defaults).
// It does not touch the database.
func NewDeadLetters(db DB, cfg *DeadLettersConfig) (*DeadLetters, error) {
	var errs []error
	if db == nil {
		errs = append(errs, errors.New("postgres: NewDeadLetters: nil DB"))
	}
	errs = append(errs, cfg.Validate())
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c := DeadLettersConfig{}
	if cfg != nil {
		c = *cfg
	}
	n, err := newNames(&c.Tables)
	if err != nil {
		return nil, err
	}
	dl, p := n.q(n.t.DeadLetters), n.q(n.t.Parked)
	const event = `p.event_id, p.event_name, p.metadata, p.payload, p.parked_at`
	letter := `SELECT d.handler, d.key, d.topic, d.event_id, d.reason, d.dead_at, d.release, d.released_at,
	coalesce(p.event_name, ''), coalesce(p.metadata, '{}'), coalesce(p.payload, ''), coalesce(p.parked_at, d.dead_at),
	(SELECT count(*) FROM ` + p + ` q WHERE q.handler = d.handler AND q.key = d.key AND q.event_id <> d.event_id)
FROM ` + dl + ` d LEFT JOIN ` + p + ` p ON p.handler = d.handler AND p.event_id = d.event_id`
	return &DeadLetters{db: db, q: dlQueries{
		add: `WITH d AS (
	INSERT INTO ` + dl + ` (handler, key, topic, event_id, reason, dead_at) VALUES ($1, $2, $3, $4, $5, coalesce($9, now()))
	ON CONFLICT (handler, key) DO NOTHING)
INSERT INTO ` + p + ` (handler, key, event_id, event_name, metadata, payload, parked_at)
VALUES ($1, $2, $4, $6, $7, $8, coalesce($10, now()))
ON CONFLICT (handler, event_id) DO NOTHING`,
		park: `WITH d AS (SELECT 1 FROM ` + dl + ` WHERE handler = $1 AND key = $2),
ins AS (
	INSERT INTO ` + p + ` (handler, key, event_id, event_name, metadata, payload, parked_at)
	SELECT $1, $2, $3, $4, $5, $6, coalesce($7, now()) FROM d
	ON CONFLICT (handler, event_id) DO NOTHING)
SELECT EXISTS (SELECT 1 FROM d)`,
		parked:       `SELECT key FROM ` + dl + ` WHERE handler = $1 AND key = ANY ($2)`,
		list:         letter + ` WHERE $1 = '' OR d.handler = $1 ORDER BY d.handler, d.dead_at, d.key`,
		get:          letter + ` WHERE d.handler = $1 AND d.key = $2`,
		parkedEvents: `SELECT ` + event + ` FROM ` + p + ` p WHERE p.handler = $1 AND p.key = $2 AND p.event_id <> $3 ORDER BY p.seq`,
		lock:         `SELECT release FROM ` + dl + ` WHERE handler = $1 AND key = $2 FOR UPDATE`,
		release:      `UPDATE ` + dl + ` SET release = $3, released_at = now() WHERE handler = $1 AND key = $2`,
		next:         `SELECT ` + event + ` FROM ` + p + ` p WHERE p.handler = $1 AND p.key = $2 ORDER BY p.seq LIMIT 1`,
		remove: `WITH del AS (DELETE FROM ` + p + ` WHERE handler = $1 AND key = $2 AND event_id = $3)
DELETE FROM ` + dl + ` WHERE handler = $1 AND key = $2
	AND NOT EXISTS (SELECT 1 FROM ` + p + ` WHERE handler = $1 AND key = $2 AND event_id <> $3)`,
		fail: `UPDATE ` + dl + ` SET event_id = $3, reason = $4, dead_at = now(), release = '', released_at = NULL
WHERE handler = $1 AND key = $2 AND EXISTS (SELECT 1 FROM ` + p + ` WHERE handler = $1 AND key = $2 AND event_id = $3)`,
	}}, nil
}

// wrap marks errors of the database as [eventbus.ErrUnavailable] (the
// consumer waits and tries again) and a missing table as
// [ErrNotMigrated] too.
func (s *DeadLetters) wrap(what string, err error) error {
	if isUndefinedTable(err) {
		return fmt.Errorf("postgres: dead letters: %s: %w: %w: %w", what, ErrNotMigrated, eventbus.ErrUnavailable, err)
	}
	return fmt.Errorf("postgres: dead letters: %s: %w: %w", what, eventbus.ErrUnavailable, err)
}

func metadataJSON(md map[string]string) ([]byte, error) {
	if md == nil {
		md = map[string]string{}
	}
	return json.Marshal(md)
}

// Add implements [eventbus.DeadLetters].
func (s *DeadLetters) Add(ctx context.Context, dl eventbus.DeadLetter) error {
	if dl.Handler == "" || dl.Key == "" || dl.Event.ID == "" {
		return fmt.Errorf("postgres: dead letters: need a handler, a key and an event ID, got %q, %q and %q", dl.Handler, dl.Key, dl.Event.ID)
	}
	md, err := metadataJSON(dl.Event.Metadata)
	if err != nil {
		return fmt.Errorf("postgres: dead letters: metadata of %s: %w", dl.Event.ID, err)
	}
	payload := dl.Event.Payload
	if payload == nil {
		payload = []byte{}
	}
	if _, err := s.db.Exec(ctx, s.q.add, dl.Handler, dl.Key, dl.Topic, dl.Event.ID, dl.Reason,
		dl.Event.Name, md, payload, nullTime(dl.DeadAt), nullTime(dl.Event.At)); err != nil {
		return s.wrap("add "+dl.Event.ID, err)
	}
	return nil
}

// Park implements [eventbus.DeadLetters].
func (s *DeadLetters) Park(ctx context.Context, handler, key string, ev eventbus.ParkedEvent) (bool, error) {
	md, err := metadataJSON(ev.Metadata)
	if err != nil {
		return false, fmt.Errorf("postgres: dead letters: metadata of %s: %w", ev.ID, err)
	}
	payload := ev.Payload
	if payload == nil {
		payload = []byte{}
	}
	var parked bool
	if err := s.db.QueryRow(ctx, s.q.park, handler, key, ev.ID, ev.Name, md, payload, nullTime(ev.At)).Scan(&parked); err != nil {
		return false, s.wrap("park "+ev.ID, err)
	}
	return parked, nil
}

// Parked implements [eventbus.DeadLetters].
func (s *DeadLetters) Parked(ctx context.Context, handler string, keys []string) ([]string, error) {
	rows, err := s.db.Query(ctx, s.q.parked, handler, keys)
	if err != nil {
		return nil, s.wrap("read parked keys", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, s.wrap("read parked keys", err)
	}
	return out, nil
}

func scanLetter(row pgx.CollectableRow) (eventbus.DeadLetter, error) {
	var dl eventbus.DeadLetter
	var release string
	var releasedAt *time.Time
	var md []byte
	var parked int64
	err := row.Scan(&dl.Handler, &dl.Key, &dl.Topic, &dl.Event.ID, &dl.Reason, &dl.DeadAt, &release, &releasedAt,
		&dl.Event.Name, &md, &dl.Event.Payload, &dl.Event.At, &parked)
	if err != nil {
		return dl, err
	}
	dl.Release, dl.Parked = eventbus.ReleaseMode(release), int(parked)
	if releasedAt != nil {
		dl.ReleasedAt = *releasedAt
	}
	if err := json.Unmarshal(md, &dl.Event.Metadata); err != nil {
		return dl, fmt.Errorf("metadata of %s: %w", dl.Event.ID, err)
	}
	return dl, nil
}

func scanEvent(row pgx.CollectableRow) (eventbus.ParkedEvent, error) {
	var ev eventbus.ParkedEvent
	var md []byte
	if err := row.Scan(&ev.ID, &ev.Name, &md, &ev.Payload, &ev.At); err != nil {
		return ev, err
	}
	if err := json.Unmarshal(md, &ev.Metadata); err != nil {
		return ev, fmt.Errorf("metadata of %s: %w", ev.ID, err)
	}
	return ev, nil
}

// List implements [eventbus.DeadLetters].
func (s *DeadLetters) List(ctx context.Context, handler string) ([]eventbus.DeadLetter, error) {
	rows, err := s.db.Query(ctx, s.q.list, handler)
	if err != nil {
		return nil, s.wrap("list", err)
	}
	out, err := pgx.CollectRows(rows, scanLetter)
	if err != nil {
		return nil, s.wrap("list", err)
	}
	return out, nil
}

// Get implements [eventbus.DeadLetters].
func (s *DeadLetters) Get(ctx context.Context, handler, key string) (eventbus.DeadLetter, []eventbus.ParkedEvent, error) {
	rows, err := s.db.Query(ctx, s.q.get, handler, key)
	if err != nil {
		return eventbus.DeadLetter{}, nil, s.wrap("get", err)
	}
	dl, err := pgx.CollectExactlyOneRow(rows, scanLetter)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return eventbus.DeadLetter{}, nil, eventbus.ErrNoDeadLetter
	case err != nil:
		return eventbus.DeadLetter{}, nil, s.wrap("get", err)
	}
	rows, err = s.db.Query(ctx, s.q.parkedEvents, handler, key, dl.Event.ID)
	if err != nil {
		return eventbus.DeadLetter{}, nil, s.wrap("get parked events", err)
	}
	evs, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return eventbus.DeadLetter{}, nil, s.wrap("get parked events", err)
	}
	return dl, evs, nil
}

// Release implements [eventbus.DeadLetters].
func (s *DeadLetters) Release(ctx context.Context, handler, key string, mode eventbus.ReleaseMode) (eventbus.DeadLetter, error) {
	if mode != eventbus.ReleaseReplay && mode != eventbus.ReleaseSkip {
		return eventbus.DeadLetter{}, fmt.Errorf("postgres: dead letters: release mode %q", mode)
	}
	var refused error
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var current string
		err := tx.QueryRow(ctx, s.q.lock, handler, key).Scan(&current)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			refused = eventbus.ErrNoDeadLetter
			return nil
		case err != nil:
			return err
		case current == string(mode):
			return nil
		case current != "":
			refused = fmt.Errorf("%w: %s asked for", eventbus.ErrReleasing, current)
			return nil
		}
		_, err = tx.Exec(ctx, s.q.release, handler, key, string(mode))
		return err
	})
	if err != nil {
		return eventbus.DeadLetter{}, s.wrap("release", err)
	}
	if refused != nil {
		return eventbus.DeadLetter{}, refused
	}
	dl, _, err := s.Get(ctx, handler, key)
	return dl, err
}

// Next implements [eventbus.DeadLetters].
func (s *DeadLetters) Next(ctx context.Context, handler, key string) (eventbus.ParkedEvent, bool, error) {
	rows, err := s.db.Query(ctx, s.q.next, handler, key)
	if err != nil {
		return eventbus.ParkedEvent{}, false, s.wrap("next", err)
	}
	ev, err := pgx.CollectExactlyOneRow(rows, scanEvent)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return eventbus.ParkedEvent{}, false, nil
	case err != nil:
		return eventbus.ParkedEvent{}, false, s.wrap("next", err)
	}
	return ev, true, nil
}

// Remove implements [eventbus.DeadLetters].
func (s *DeadLetters) Remove(ctx context.Context, handler, key, eventID string) error {
	if _, err := s.db.Exec(ctx, s.q.remove, handler, key, eventID); err != nil {
		return s.wrap("remove "+eventID, err)
	}
	return nil
}

// Fail implements [eventbus.DeadLetters].
func (s *DeadLetters) Fail(ctx context.Context, handler, key, eventID, reason string) error {
	tag, err := s.db.Exec(ctx, s.q.fail, handler, key, eventID, reason)
	if err != nil {
		return s.wrap("fail "+eventID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: dead letters: %q key %q does not hold event %q: %w", handler, key, eventID, eventbus.ErrNoDeadLetter)
	}
	return nil
}
