package postgres_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository/repositorytest"
)

// BenchmarkSave measures Save of a loaded aggregate that recorded 2 new
// events: UPDATE of its row with the version check plus 2 outbox rows, in
// one transaction (fsync as the test server has it). "pgx" is the same
// work written by hand: begin, the same UPDATE, the same multi-row outbox
// INSERT, commit. Both loops record the 2 events through the aggregate
// first, so the difference is the repository's own cost.
//
//	go test -run '^$' -bench BenchmarkSave -benchmem -count 5 ./postgres/
func BenchmarkSave(b *testing.B) {
	ctx := context.Background()
	pg := setupPG(b, repositorytest.Registry(b))
	mapping := repositorytest.Mapping()
	mapping.Keys = nil // the common case; dddkit_with_keys measures keys
	repo, err := postgres.NewRepository(pg.pool, pg.outbox, mapping, nil)
	require.NoError(b, err)

	record2 := func(b *testing.B, c *repositorytest.Counter) {
		if err := c.Add(1); err != nil {
			b.Fatal(err)
		}
		if err := c.Add(2); err != nil {
			b.Fatal(err)
		}
	}
	newCounter := func(b *testing.B, r *postgres.Repository[*repositorytest.Counter]) *repositorytest.Counter {
		id := b.Name() + "-" + dddkittest.UniqueSuffix()
		c, err := repositorytest.NewCounter(id, id)
		require.NoError(b, err)
		require.NoError(b, r.Save(ctx, c))
		return c
	}

	b.Run("dddkit", func(b *testing.B) {
		c := newCounter(b, repo)
		b.ReportAllocs()
		for b.Loop() {
			record2(b, c)
			if err := repo.Save(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("pgx", func(b *testing.B) {
		c := newCounter(b, repo)
		const update = `UPDATE aggregates SET version = $4, state = $5, updated_at = now() WHERE type = $1 AND id = $2 AND version = $3`
		const insert = `INSERT INTO ` + postgres.DefaultOutboxTable + ` (event_id, aggregate_type, aggregate_id, aggregate_version, event_name, payload, headers, occurred_at)
VALUES ($1,$2,$3,$4,$5,$6,$7,$8),($9,$10,$11,$12,$13,$14,$15,$16)`
		type state struct {
			Name  string `json:"name"`
			Value int    `json:"value"`
		}
		save := func(c *repositorytest.Counter) error {
			events := c.Changes()
			st, err := json.Marshal(state{Name: c.Name(), Value: c.Value()})
			if err != nil {
				return err
			}
			args := make([]any, 0, 16)
			for _, e := range events {
				payload, err := json.Marshal(e.Payload)
				if err != nil {
					return err
				}
				args = append(args, e.ID, e.AggregateType, e.AggregateID, e.Version, e.Name, payload, nil, e.OccurredAt)
			}
			tx, err := pg.pool.Begin(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback(ctx) }()
			tag, err := tx.Exec(ctx, update, c.Type(), c.ID(), c.CommittedVersion(), c.Version(), st)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return aggregate.ErrConcurrencyConflict
			}
			if _, err := tx.Exec(ctx, insert, args...); err != nil {
				return err
			}
			if err := tx.Commit(ctx); err != nil {
				return err
			}
			aggregate.MarkCommitted(c)
			return nil
		}
		b.ReportAllocs()
		for b.Loop() {
			record2(b, c)
			if err := save(c); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("dddkit_with_keys", func(b *testing.B) {
		keyed, err := postgres.NewRepository(pg.pool, pg.outbox, repositorytest.Mapping(), nil)
		require.NoError(b, err)
		c := newCounter(b, keyed)
		b.ReportAllocs()
		for b.Loop() {
			record2(b, c)
			if err := keyed.Save(ctx, c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
