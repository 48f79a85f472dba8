package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/internal/wire"
)

// pgBackend is the PostgreSQL storage side of a [Relay].
type pgBackend struct {
	db        *pgxpool.Pool
	n         names
	retention time.Duration

	fetchSQL, publishedSQL, attemptsSQL string
}

func newPGBackend(db *pgxpool.Pool, n names, retention time.Duration) *pgBackend {
	t := n.qtable
	b := &pgBackend{db: db, n: n, retention: retention}
	// A pending row is eligible when it is due and no earlier row of its
	// aggregate is failed or waiting for a retry. The NOT EXISTS probe
	// uses the (usually empty) partial index of blocking rows.
	b.fetchSQL = `SELECT o.seq, o.event_id, o.aggregate_type, o.aggregate_id, o.aggregate_version, o.event_name,
	o.event_version, o.payload, o.headers, o.occurred_at, o.attempts
FROM ` + t + ` o
WHERE o.status = 'pending'
	AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= now())
	AND NOT EXISTS (
		SELECT 1 FROM ` + t + ` b
		WHERE b.aggregate_type = o.aggregate_type AND b.aggregate_id = o.aggregate_id AND b.seq < o.seq
			AND (b.status = 'failed' OR (b.status = 'pending' AND b.next_attempt_at > now())))
ORDER BY o.seq
LIMIT $1`
	if retention == 0 {
		b.publishedSQL = `DELETE FROM ` + t + ` WHERE seq = ANY($1)`
	} else {
		b.publishedSQL = `UPDATE ` + t + ` SET status = 'published', published_at = now(), next_attempt_at = NULL WHERE seq = ANY($1)`
	}
	b.attemptsSQL = `UPDATE ` + t + ` o SET
	attempts = u.attempts,
	last_error = u.err,
	status = CASE WHEN u.final THEN 'failed' ELSE 'pending' END,
	next_attempt_at = CASE WHEN u.final THEN NULL ELSE now() + u.delay_ms * interval '1 millisecond' END
FROM unnest($1::bigint[], $2::int[], $3::text[], $4::bool[], $5::bigint[]) AS u(seq, attempts, err, final, delay_ms)
WHERE o.seq = u.seq`
	return b
}

func (b *pgBackend) fetch(ctx context.Context, limit int) ([]item, error) {
	rows, err := b.db.Query(ctx, b.fetchSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: fetch pending events: %w", err)
	}
	defer rows.Close()
	out := make([]item, 0, min(limit, 256))
	var headers []byte
	for rows.Next() {
		var it item
		headers = headers[:0]
		if err := rows.Scan(&it.seq, &it.env.ID, &it.env.AggregateType, &it.env.AggregateID, &it.env.Version,
			&it.env.Name, &it.eventVersion, &it.payload, &headers, &it.env.OccurredAt, &it.attempts); err != nil {
			return nil, fmt.Errorf("outbox: read pending event: %w", err)
		}
		if len(headers) > 0 {
			var h map[string]string
			if err := json.Unmarshal(headers, &h); err != nil {
				return nil, fmt.Errorf("outbox: event %s: decode headers: %w", it.env.ID, err)
			}
			it.env.Metadata = wire.ParseMetadata(h)
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: fetch pending events: %w", err)
	}
	return out, nil
}

func (b *pgBackend) markPublished(ctx context.Context, seqs []int64) error {
	if _, err := b.db.Exec(ctx, b.publishedSQL, seqs); err != nil {
		return fmt.Errorf("outbox: mark %d events published: %w", len(seqs), err)
	}
	return nil
}

func (b *pgBackend) markAttempts(ctx context.Context, as []attempt) error {
	seqs := make([]int64, len(as))
	counts := make([]int32, len(as))
	errs := make([]string, len(as))
	finals := make([]bool, len(as))
	delays := make([]int64, len(as))
	for i, a := range as {
		seqs[i], counts[i], errs[i], finals[i], delays[i] = a.seq, int32(min(a.attempts, 1<<30)), truncate(a.err, 2000), a.final, a.delay.Milliseconds()
	}
	if _, err := b.db.Exec(ctx, b.attemptsSQL, seqs, counts, errs, finals, delays); err != nil {
		return fmt.Errorf("outbox: record %d failed attempts: %w", len(as), err)
	}
	return nil
}

// truncate makes s storable as PostgreSQL text of at most n bytes: valid
// UTF-8, no NUL bytes, cut at a rune boundary.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// deletePublished removes published rows older than age, in chunks.
func deletePublished(ctx context.Context, db *pgxpool.Pool, n names, age time.Duration) (int64, error) {
	sql := `DELETE FROM ` + n.qtable + ` WHERE seq IN (
	SELECT seq FROM ` + n.qtable + ` WHERE status = 'published' AND published_at <= now() - $1 * interval '1 millisecond' LIMIT 10000)`
	var total int64
	for {
		tag, err := db.Exec(ctx, sql, age.Milliseconds())
		if err != nil {
			return total, fmt.Errorf("outbox: delete published rows: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < 10000 {
			return total, nil
		}
	}
}

const recordColumns = `seq, event_id, aggregate_type, aggregate_id, aggregate_version, event_name, event_version, payload, headers,
	occurred_at, status, attempts, coalesce(last_error, ''), created_at, next_attempt_at, published_at`

func scanRecords(rows pgx.Rows) ([]Record, error) {
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var (
			r          Record
			headers    []byte
			status     string
			next, publ *time.Time
		)
		if err := rows.Scan(&r.Seq, &r.Event.ID, &r.Event.AggregateType, &r.Event.AggregateID, &r.Event.Version,
			&r.Event.Name, &r.EventVersion, &r.RawPayload, &headers, &r.Event.OccurredAt, &status, &r.Attempts, &r.LastError,
			&r.CreatedAt, &next, &publ); err != nil {
			return nil, err
		}
		r.Status = Status(status)
		if next != nil {
			r.NextAttemptAt = *next
		}
		if publ != nil {
			r.PublishedAt = *publ
		}
		if len(headers) > 0 {
			var h map[string]string
			if err := json.Unmarshal(headers, &h); err != nil {
				return nil, fmt.Errorf("event %s: decode headers: %w", r.Event.ID, err)
			}
			r.Event.Metadata = wire.ParseMetadata(h)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
