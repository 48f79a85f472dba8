package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/postgres"
)

// rebuildActivity implements "authnotify rebuild-activity": it empties the
// account activity read model in production so that the projection
// builds it again from the start of the user topic, which keeps every
// event (provisioned with retention.ms=-1).
//
// The projection consumes the published events from Kafka, so a rebuild
// replays the topic: in one transaction the read model and the
// projection's inbox rows are deleted, then its consumer group is
// deleted, so that it starts again from the oldest event. A consumer
// group can only be deleted while it has no members: every replica of
// the service must be stopped first, and the rebuild refuses to run
// otherwise. The activity fills up again once the service runs.
func rebuildActivity(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("authnotify rebuild-activity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "authnotify rebuild-activity: unexpected arguments %q\n", fs.Args())
		return exitConfig
	}
	cfg, err := config.Load(getenv)
	if err == nil && (cfg.DatabaseURL == "" || len(cfg.KafkaBrokers) == 0) {
		err = errors.New("rebuild-activity needs the production configuration (DATABASE_URL and KAFKA_BROKERS): the embedded mode keeps its read model in memory and builds it at every start")
	}
	if err != nil {
		fmt.Fprintf(stderr, "authnotify rebuild-activity: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return exitConfig
	}
	if err := rebuild(ctx, cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "authnotify rebuild-activity: %v\n", err)
		return exitFailed
	}
	return exitOK
}

func rebuild(ctx context.Context, cfg config.Config, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	group := cfg.GroupPrefix + adapters.ActivityProjectionName

	sc := sarama.NewConfig()
	sc.Version = kafka.DefaultVersion
	admin, err := sarama.NewClusterAdmin(cfg.KafkaBrokers, sc)
	if err != nil {
		return fmt.Errorf("cannot reach Kafka at KAFKA_BROKERS: %w", err)
	}
	defer admin.Close()
	groups, err := admin.DescribeConsumerGroups([]string{group})
	if err != nil {
		return fmt.Errorf("describe consumer group %s: %w", group, err)
	}
	for _, g := range groups {
		if len(g.Members) > 0 {
			return fmt.Errorf("consumer group %s has %d active members: stop every replica of the service first, then run rebuild-activity again", group, len(g.Members))
		}
	}

	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	defer pool.Close()
	activity, err := adapters.NewPostgresActivity(pool)
	if err != nil {
		return err
	}
	inbox := pgx.Identifier{postgres.DefaultInboxTable}.Sanitize()
	uow, err := postgres.NewUnitOfWork(pool)
	if err != nil {
		return err
	}
	var deleted int64
	err = uow.Do(ctx, func(ctx context.Context) error {
		if err := activity.Reset(ctx); err != nil {
			return err
		}
		tx, _ := postgres.TxFromContext(ctx)
		tag, err := tx.Exec(ctx, `DELETE FROM `+inbox+` WHERE handler = $1 OR handler LIKE $2`, group, group+"@%")
		deleted = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("reset the read model: %w", err)
	}
	if err := admin.DeleteConsumerGroup(group); err != nil && !errors.Is(err, sarama.ErrGroupIDNotFound) {
		return fmt.Errorf("the read model is empty, but deleting consumer group %s failed (run rebuild-activity again): %w", group, err)
	}
	fmt.Fprintf(stdout, "The account activity read model is empty (%d inbox rows of %s deleted) and consumer group %s starts from the oldest event.\nStart the service: the projection rebuilds the read model from the user topic.\n", deleted, group, group)
	return nil
}
