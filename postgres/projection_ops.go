package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Names returns the names of the projections that have a checkpoint in
// the store, sorted: what an operator's "projections status" lists.
func (s *ProjectionStore) Names(ctx context.Context) ([]string, error) {
	rows, err := s.db.Query(ctx, s.names)
	if err != nil {
		return nil, s.fail("list", "*", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: projections: list: %w", err)
	}
	return names, nil
}
