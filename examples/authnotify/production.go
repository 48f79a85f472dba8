package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/examples/authnotify/auth/ports"
	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
	"github.com/dddkit/dddkit/examples/authnotify/internal/throttle"
	nadapters "github.com/dddkit/dddkit/examples/authnotify/notification/adapters"
	napp "github.com/dddkit/dddkit/examples/authnotify/notification/app"
	ndomain "github.com/dddkit/dddkit/examples/authnotify/notification/domain"
	nports "github.com/dddkit/dddkit/examples/authnotify/notification/ports"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
)

// buildProduction wires production mode:
//
//	cqrs.Transaction (postgres.UnitOfWork) → postgres.Repository
//	  → postgres.Outbox (same transaction) → outbox.Relay → kafka.Client
//	  → Kafka → eventbus.Router (consumer group) → postgres.Inbox
//	  → River job (same transaction as the inbox row) → River worker
//	  → Mailer → Resend
//
// It connects to PostgreSQL and Kafka, runs every migration (dddkit's
// tables, River's) and provisions the Kafka topics; all of it is safe
// to run from several replicas at once.
func buildProduction(ctx context.Context, cfg config.Config, rt runtime, m *metrics) (_ *system, err error) {
	log := rt.Logger
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeAll()
		}
	}()

	sh, err := buildShared(cfg)
	if err != nil {
		return nil, err
	}

	// PostgreSQL and the migrations.
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, errors.New("DATABASE_URL cannot be parsed")
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	closers = append(closers, pool.Close)
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		return nil, fmt.Errorf("cannot reach PostgreSQL at DATABASE_URL: %w", err)
	}
	var schema string
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	inbox, err := postgres.NewInbox(pool, &postgres.InboxConfig{Logger: log})
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, pool, schema, log); err != nil {
		return nil, err
	}

	// Auth: users in PostgreSQL, their events into the outbox table in
	// the same transaction: the unit of work every command runs in.
	box, err := postgres.NewOutbox(pool, sh.registry, &postgres.OutboxConfig{Logger: log})
	if err != nil {
		return nil, err
	}
	users, err := adapters.NewPostgres(sh.factory, pool, box)
	if err != nil {
		return nil, err
	}
	uow, err := postgres.NewUnitOfWork(pool)
	if err != nil {
		return nil, err
	}
	hasher, err := limitHashes(cfg, rt.Hasher)
	if err != nil {
		return nil, err
	}
	logins, err := throttle.NewPostgres(pool, throttleConfig(cfg)) // shared by every replica
	if err != nil {
		return nil, err
	}
	activity, err := adapters.NewPostgresActivity(pool)
	if err != nil {
		return nil, err
	}
	expiry, err := adapters.NewExpiry(box) // deadlines are outbox rows, written in the command's transaction
	if err != nil {
		return nil, err
	}
	bus, err := newBus(log, uow, app.Deps{Users: users, Factory: sh.factory, Tokens: sh.tokens, Hasher: hasher, Logger: log, Throttle: logins,
		Activity: activity, Expiry: expiry, UnverifiedTTL: cfg.UnverifiedAccountTTL})
	if err != nil {
		return nil, err
	}

	// Notification: Resend, the mailer, River's worker and client.
	sender, err := nadapters.NewResend(nadapters.ResendConfig{
		APIKey: cfg.ResendAPIKey, From: cfg.EmailFrom, BaseURL: cfg.ResendBaseURL, HTTPClient: tracedClient(rt.HTTPClient), Logger: log,
	})
	if err != nil {
		return nil, err
	}
	templates, err := ndomain.NewTemplates("")
	if err != nil {
		return nil, err
	}
	mailer, err := napp.NewMailer(sender, sh.cipher, templates)
	if err != nil {
		return nil, err
	}
	worker, err := nadapters.NewEmailWorker(mailer.Deliver, log)
	if err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, worker); err != nil {
		return nil, err
	}
	riverClient, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:     map[string]river.QueueConfig{nadapters.EmailQueue: {MaxWorkers: 10}},
		Workers:    workers,
		Middleware: riverMiddleware(),
		Logger:     log,
		Schema:     schema,
	})
	if err != nil {
		return nil, fmt.Errorf("river: %w", err)
	}
	jobs, err := nadapters.NewRiverQueue(riverClient)
	if err != nil {
		return nil, err
	}
	handlers, err := napp.NewEventHandlers(jobs, sh.cipher)
	if err != nil {
		return nil, err
	}

	// Kafka: one client, whose one producer serves the relay and the
	// consumers' dead letters; the consumers (one consumer group per
	// handler name, the inbox in each delivery's transaction).
	client, err := kafka.NewClient(&kafka.Config{
		Brokers: cfg.KafkaBrokers, ClientID: "authnotify", Logger: log,
		Topics: kafka.TopicDefaults{Partitions: cfg.TopicPartitions, ReplicationFactor: cfg.ReplicationFactor},
	})
	if err != nil {
		return nil, fmt.Errorf("cannot reach Kafka at KAFKA_BROKERS: %w", err)
	}
	closers = append(closers, func() { _ = client.Close() })
	// Dead letters, and the events of their keys parked behind them, in
	// PostgreSQL: they survive restarts and every replica sees them.
	deadLetters, err := postgres.NewDeadLetters(pool, nil)
	if err != nil {
		return nil, err
	}
	router, err := eventbus.NewRouter(client, sh.registry, &eventbus.RouterConfig{
		Logger:          log,
		DeadLetters:     deadLetters,
		DeadLetterTopic: cfg.TopicPrefix + eventbus.DefaultDeadLetterTopic,
		CloseTimeout:    15 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	if err := nports.Subscribe(router, cfg.GroupPrefix+nports.HandlerName, inbox, handlers); err != nil {
		return nil, err
	}
	if err := ports.ExpireAccounts(router, cfg.GroupPrefix+ports.ExpiryHandlerName, bus); err != nil {
		return nil, err
	}
	// The account activity read model, from the published user events, on
	// the same router: batches of a partition in one transaction with
	// their inbox rows.
	activityProjection, err := adapters.ActivityProjection(cfg.GroupPrefix+adapters.ActivityProjectionName, sh.registry, activity)
	if err != nil {
		return nil, err
	}
	projections, err := postgres.NewProjectionStore(pool, nil)
	if err != nil {
		return nil, err
	}
	if err := activityProjection.Subscribe(router, inbox, projections); err != nil {
		return nil, err
	}
	if err := provisionTopics(ctx, client, sh.registry, router, log); err != nil {
		return nil, err
	}
	relay, err := outbox.NewRelay(box, client.Publisher(), sh.registry, &outbox.RelayConfig{
		Logger:        log,
		StatsInterval: cmp.Or(rt.GaugeRefresh, defaultGaugeRefresh),
		Hooks: outbox.Hooks{
			OnLeader: func(leader bool) {
				log.Info("outbox relay leadership", slog.Bool("leader", leader))
			},
		},
	})
	if err != nil {
		return nil, err
	}

	riverJobs := pgx.Identifier{schema, "river_job"}.Sanitize()
	m.gauges = func(ctx context.Context, g *gaugeWriter) {
		rows, err := pool.Query(ctx, "SELECT state::text, count(*) FROM "+riverJobs+" WHERE kind = $1 GROUP BY state ORDER BY state", nadapters.EmailJobKind)
		if err != nil {
			return
		}
		defer rows.Close()
		for rows.Next() {
			var state string
			var n int64
			if rows.Scan(&state, &n) == nil {
				g.gauge("authnotify_email_jobs", "Email jobs in River by state (completed ones until River cleans them up).", float64(n), "state", state)
			}
		}
	}

	// River's web UI, for operators, only with a password.
	routes := func(*http.ServeMux) {}
	var uiComponents []component
	if cfg.AdminPassword != "" {
		ui, uiRun, err := newRiverUI(riverClient, cfg.AdminPassword, log)
		if err != nil {
			return nil, fmt.Errorf("river UI: %w", err)
		}
		routes = func(mux *http.ServeMux) { mux.Handle(riverUIPrefix+"/", ui) }
		uiComponents = append(uiComponents, uiRun)
	} else {
		log.Info("River UI not mounted at " + riverUIPrefix + ": set ADMIN_PASSWORD to enable it")
	}
	return &system{
		bus:    bus,
		routes: routes,
		ready: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := pool.Ping(ctx); err != nil {
				return fmt.Errorf("PostgreSQL: %w", err)
			}
			return kafkaReachable(ctx, cfg.KafkaBrokers)
		},
		components: append([]component{
			{name: "email worker (River)", run: func(ctx context.Context) error {
				if err := riverClient.Start(context.WithoutCancel(ctx)); err != nil {
					return err
				}
				<-ctx.Done()
				stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				if err := riverClient.Stop(stopCtx); err != nil {
					log.Warn("River: graceful stop timed out; cancelling running jobs", slog.Any("error", err))
					hardCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
					defer cancel()
					return riverClient.StopAndCancel(hardCtx)
				}
				return nil
			}},
			{name: "event consumers", run: router.Run, started: router.Running()},
			{name: "outbox relay", run: relay.Run},
			{name: "inbox cleanup", run: inbox.RunCleanup},
		}, uiComponents...),
		close: closeAll,
	}, nil
}

// migrate installs or upgrades every schema the system uses. Each step
// is idempotent and takes an advisory lock, so replicas starting together
// take turns.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, log *slog.Logger) error {
	if err := postgres.Migrate(ctx, pool, nil); err != nil {
		return fmt.Errorf("migrate dddkit tables: %w", err)
	}
	if err := throttle.Migrate(ctx, pool); err != nil {
		return fmt.Errorf("migrate login throttle: %w", err)
	}
	if err := adapters.MigrateActivity(ctx, pool); err != nil {
		return fmt.Errorf("migrate account activity: %w", err)
	}
	// River's migrator takes no lock of its own, and its steps cannot share
	// one transaction: hold a session-level advisory lock on a connection
	// of its own while it runs.
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: schema, Logger: log})
	if err != nil {
		return fmt.Errorf("migrate River: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate River: %w", err)
	}
	defer conn.Release()
	const lock = "SELECT pg_advisory_lock(hashtextextended('authnotify/river-migrate/' || $1, 0))"
	const unlock = "SELECT pg_advisory_unlock(hashtextextended('authnotify/river-migrate/' || $1, 0))"
	if _, err := conn.Exec(ctx, lock, schema); err != nil {
		return fmt.Errorf("migrate River: lock: %w", err)
	}
	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if _, uerr := conn.Exec(context.WithoutCancel(ctx), unlock, schema); uerr != nil {
		conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing the session frees the lock
	}
	if err != nil {
		return fmt.Errorf("migrate River: %w", err)
	}
	return nil
}

// provisionTopics creates the Kafka topics the system uses, those that do
// not exist yet: the topics its events are published on (the registry's)
// and those its consumers read and dead-letter to (the router's), with
// KAFKA_TOPIC_PARTITIONS partitions and KAFKA_REPLICATION_FACTOR replicas.
// Replicas starting together may all run it. A topic that exists with
// another partition count stops start-up: adding partitions moves keys,
// which is an operator's decision.
func provisionTopics(ctx context.Context, client *kafka.Client, reg *eventbus.Registry, router *eventbus.Router, log *slog.Logger) error {
	names := append(reg.Topics(), router.Topics()...)
	events := reg.Topics()
	topics := make([]kafka.TopicSpec, len(names))
	for i, name := range names {
		topics[i] = kafka.TopicSpec{Name: name}
		if slices.Contains(events, name) {
			// The event topics keep every event: the account activity
			// projection is rebuilt from their start (rebuild-activity).
			topics[i].Config = map[string]string{"retention.ms": "-1"}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := client.Provision(ctx, topics...); err != nil {
		return fmt.Errorf("provision Kafka topics (KAFKA_TOPIC_PARTITIONS, KAFKA_REPLICATION_FACTOR): %w", err)
	}
	log.Info("Kafka topics ready", slog.Any("topics", slices.Compact(slices.Sorted(slices.Values(names)))))
	return nil
}

// kafkaReachable reports whether one of the brokers accepts a connection.
func kafkaReachable(ctx context.Context, brokers []string) error {
	var d net.Dialer
	var errs []error
	for _, b := range brokers {
		conn, err := d.DialContext(ctx, "tcp", b)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("no Kafka broker reachable: %w", errors.Join(errs...))
}
