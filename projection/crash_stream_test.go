package projection_test

import (
	"context"
	"errors"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/projection"
)

// childStream runs the crash projection on the event store's stream.
func childStream(ctx context.Context, pool *pgxpool.Pool, reg *eventbus.Registry, p *projection.Projection, log *slog.Logger) error {
	return errors.New("the stream source needs postgres.EventStream (branch r1-streams)")
}
