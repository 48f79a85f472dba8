package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
)

// ErrInvalidEvent is wrapped by [Store.Write] and [Memory.Append] when an
// envelope lacks a required field (ID, Name, AggregateType, AggregateID,
// Payload) or its payload cannot be encoded as JSON. Nothing is written.
var ErrInvalidEvent = errors.New("outbox: invalid event")

// valuesRows is the largest number of events written with a multi-row
// VALUES statement; larger calls use one statement over arrays (unnest).
const valuesRows = 32

const insertColumns = `(event_id, aggregate_type, aggregate_id, aggregate_version, event_name, event_version, payload, headers, occurred_at)`

// insertArgs is the number of parameters per event of the VALUES form.
const insertArgs = 9

// Store writes events into the outbox table inside the caller's
// transaction: the events are published if and only if that transaction
// commits. It holds no connection and is safe for concurrent use.
type Store struct {
	cfg       Config
	table     string
	valuesSQL [valuesRows + 1]string
	unnestSQL string
}

// NewStore returns a Store for the outbox table of cfg (nil = defaults).
// It does not touch the database; run [Migrate] once before writing.
func NewStore(cfg *Config) (*Store, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{cfg: c}
	if c.Schema == "" {
		s.table = pgx.Identifier{c.Table}.Sanitize()
	} else {
		s.table = pgx.Identifier{c.Schema, c.Table}.Sanitize()
	}
	for n := 1; n <= valuesRows; n++ {
		var b strings.Builder
		b.WriteString("INSERT INTO " + s.table + " " + insertColumns + " VALUES ")
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for j := range insertArgs {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteByte('$')
				b.WriteString(strconv.Itoa(i*insertArgs + j + 1))
			}
			b.WriteByte(')')
		}
		s.valuesSQL[n] = b.String()
	}
	s.unnestSQL = "INSERT INTO " + s.table + " " + insertColumns + `
SELECT e, t, a, v, n, ev, p::jsonb, h::jsonb, o
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::int[], $7::text[], $8::text[], $9::timestamptz[])
	AS u(e, t, a, v, n, ev, p, h, o)`
	return s, nil
}

// Config returns the store's configuration with defaults filled in.
func (s *Store) Config() Config { return s.cfg }

// Write inserts events into the outbox as part of tx, in one statement.
// The events' payloads are encoded with encoding/json; their metadata is
// stored as the headers it will travel with, and the payload's schema
// version (its EventVersion() int method, 1 without one) is stored and
// sent as [HeaderEventVersion]. The
// envelope ID must be unique across the outbox (a duplicate fails the
// statement, and with it the caller's transaction). A zero OccurredAt is
// stored as the current time. Writing no events does nothing.
//
// The insert fires the table's NOTIFY trigger, so a running [Relay] is
// woken when tx commits.
func (s *Store) Write(ctx context.Context, tx pgx.Tx, events ...aggregate.Envelope) error {
	if len(events) == 0 {
		return nil
	}
	if tx == nil {
		return errors.New("outbox: Write: nil transaction")
	}
	rows, err := encodeEvents(events)
	if err != nil {
		return err
	}
	if len(rows) <= valuesRows {
		args := make([]any, 0, insertArgs*len(rows))
		for i := range rows {
			r := &rows[i]
			var headers any
			if r.headers != nil {
				headers = r.headers
			}
			args = append(args, r.env.ID, r.env.AggregateType, r.env.AggregateID, r.env.Version, r.env.Name, r.eventVersion, r.payload, headers, r.env.OccurredAt)
		}
		if _, err := tx.Exec(ctx, s.valuesSQL[len(rows)], args...); err != nil {
			return fmt.Errorf("outbox: write %d events: %w", len(rows), err)
		}
		return nil
	}
	var (
		ids, types, aggIDs, evNames = make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
		payloads                    = make([]string, len(rows))
		headers                     = make([]*string, len(rows))
		versions                    = make([]int64, len(rows))
		evVersions                  = make([]int32, len(rows))
		times                       = make([]time.Time, len(rows))
	)
	for i := range rows {
		r := &rows[i]
		ids[i], types[i], aggIDs[i], evNames[i] = r.env.ID, r.env.AggregateType, r.env.AggregateID, r.env.Name
		payloads[i] = string(r.payload)
		if r.headers != nil {
			h := string(r.headers)
			headers[i] = &h
		}
		versions[i], times[i], evVersions[i] = r.env.Version, r.env.OccurredAt, r.eventVersion
	}
	if _, err := tx.Exec(ctx, s.unnestSQL, ids, types, aggIDs, versions, evNames, evVersions, payloads, headers, times); err != nil {
		return fmt.Errorf("outbox: write %d events: %w", len(rows), err)
	}
	return nil
}

// encodedEvent is an envelope ready for storage.
type encodedEvent struct {
	env          aggregate.Envelope
	eventVersion int32  // schema version of the payload (wire.EventVersion)
	payload      []byte // JSON
	headers      []byte // JSON object of wire metadata headers, nil when none
}

func encodeEvents(events []aggregate.Envelope) ([]encodedEvent, error) {
	out := make([]encodedEvent, len(events))
	var now time.Time
	for i, env := range events {
		if err := checkEnvelope(env); err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		payload, err := json.Marshal(env.Payload)
		if err != nil {
			return nil, fmt.Errorf("%w: event %d (%s %s): encode payload: %w", ErrInvalidEvent, i, env.Name, env.ID, err)
		}
		if env.OccurredAt.IsZero() {
			if now.IsZero() {
				now = time.Now()
			}
			env.OccurredAt = now
		}
		out[i] = encodedEvent{env: env, payload: payload, eventVersion: int32(min(wire.EventVersion(env.Payload), 1<<30))}
		if h := wire.MetadataHeaders(env.Metadata); h != nil {
			if out[i].headers, err = json.Marshal(h); err != nil {
				return nil, fmt.Errorf("%w: event %d (%s %s): encode metadata: %w", ErrInvalidEvent, i, env.Name, env.ID, err)
			}
		}
	}
	return out, nil
}

func checkEnvelope(env aggregate.Envelope) error {
	var missing []string
	if env.ID == "" {
		missing = append(missing, "ID")
	}
	if env.Name == "" {
		missing = append(missing, "Name")
	}
	if env.AggregateType == "" {
		missing = append(missing, "AggregateType")
	}
	if env.AggregateID == "" {
		missing = append(missing, "AggregateID")
	}
	if env.Payload == nil {
		missing = append(missing, "Payload")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s %s: missing %s", ErrInvalidEvent, env.Name, env.ID, strings.Join(missing, ", "))
	}
	return nil
}
