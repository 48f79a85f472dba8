package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dddkit/dddkit/outbox"
)

// ErrRecordNotFound is returned by [Outbox.Get] for a sequence number
// that no row has.
var ErrRecordNotFound = errors.New("postgres: outbox: no such row")

// Get returns the outbox row with sequence number seq, whatever its
// status; [ErrRecordNotFound] when there is none.
func (o *Outbox) Get(ctx context.Context, seq int64) (outbox.Record, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return outbox.Record{}, err
	}
	rows, err := o.db.Query(ctx, `SELECT `+recordColumns+` FROM `+r.qtable+` WHERE seq = $1`, seq)
	if err != nil {
		return outbox.Record{}, fmt.Errorf("postgres: outbox: get row %d: %w", seq, err)
	}
	recs, err := scanRecords(rows)
	if err != nil {
		return outbox.Record{}, fmt.Errorf("postgres: outbox: get row %d: %w", seq, err)
	}
	if len(recs) == 0 {
		return outbox.Record{}, fmt.Errorf("%w: seq %d", ErrRecordNotFound, seq)
	}
	return recs[0], nil
}

// Discard gives up on failed rows (by sequence): they become
// [outbox.StatusDiscarded], are never published, and the later events of
// their aggregates flow again. The rows stay, with by (who discarded
// them), reason (why) and the time, for the record; [Outbox.List] shows
// them. Discard returns how many rows it changed; rows that are not
// failed are left alone. by and reason must not be empty. Discarding
// loses those events for the consumers: prefer [Outbox.Retry] once the
// cause is fixed.
func (o *Outbox) Discard(ctx context.Context, by, reason string, seqs ...int64) (int64, error) {
	var errs []error
	if strings.TrimSpace(by) == "" {
		errs = append(errs, errors.New("postgres: outbox: discard: say who discards (by)"))
	}
	if strings.TrimSpace(reason) == "" {
		errs = append(errs, errors.New("postgres: outbox: discard: say why (reason)"))
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	if len(seqs) == 0 {
		return 0, nil
	}
	return o.change(ctx, "discard", `UPDATE %s SET status = 'discarded', discarded_by = $2, discard_reason = $3,
		discarded_at = now(), next_attempt_at = NULL
		WHERE status = 'failed' AND seq = ANY($1)`, seqs, truncate(by, 200), truncate(reason, 2000))
}
