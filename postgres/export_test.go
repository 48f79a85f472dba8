package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dddkit/dddkit/outbox"
)

// ShardOrderSQL and ShardOrderOf compute a shard key's shard order in
// SQL and in Go.
var (
	ShardOrderSQL = shardOrderSQL
	ShardOrderOf  = shardOrderOf
)

// RebalanceNotice is the payload of the relays' NOTIFY to each other.
const RebalanceNotice = rebalanceNotice

// LeadPlannerSQL is the planner setup of the relay's lock connection.
const LeadPlannerSQL = leadPlannerSQL

// RelayStatements returns the SQL of the statements the relay runs on
// its lock connection for o's table, by name.
func (o *Outbox) RelayStatements(ctx context.Context) (map[string]string, error) {
	r, err := o.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return map[string]string{
		"fetch": r.fetchSQL, "fetch_shards": r.fetchShardsSQL,
		"fetch_beside": r.fetchBesideSQL,
		"window":       r.windowSQL,
		"published":    r.publishedSQL, "attempts": r.attemptsSQL, "promote": r.promoteSQL,
	}, nil
}

// Wary reports whether the next batch of handler skips recorded events
// from the start instead of trying the plain insert first.
func (i *Inbox) Wary(handler string) bool {
	_, ok := i.wary.Load(handler)
	return ok
}

// ErrBegin is wrapped by the error of a unit's first statement when the
// unit's transaction could not begin.
var ErrBegin = errBegin

// ReadPending is the relay fetch's row reader.
func ReadPending(rows pgx.Rows) ([]outbox.Pending, []int32, error) { return readPending(rows, 16) }

// Decodable reports whether ReadPending decodes rows described by fds
// itself (instead of scanning them).
func Decodable(fds []pgconn.FieldDescription) bool {
	decode, _ := decodable(fds)
	return decode
}
