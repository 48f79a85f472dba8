package dddkit_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/repository"
	"github.com/dddkit/dddkit/valueobject"
)

type subscriberRow struct {
	Email string `json:"email"`
}

var subscriberMapping = repository.JSON("subscriber",
	func(s *Subscriber) subscriberRow { return subscriberRow{Email: s.email.String()} },
	func(id string, r subscriberRow) (*Subscriber, error) {
		email, err := valueobject.ParseEmail(r.Email)
		if err != nil {
			return nil, err
		}
		s := &Subscriber{email: email, active: true}
		s.Init(id, "subscriber", s.apply)
		return s, nil
	})

// The production wiring of a service, once: one registry, one pool, one
// unit of work around every command, one Kafka client whose producer the
// relay uses, and a consumer that applies each event once through the
// inbox. The README's quick start shows the same. (Not run: it needs
// PostgreSQL and Kafka.)
func Example_wiring() {
	ctx := context.Background()
	logger := slog.Default()

	// One event registry: each event type registered once.
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:service:shop"})
	_ = eventbus.Register[Subscribed](reg, eventbus.AggregateType("subscriber"))

	// PostgreSQL: every dddkit table, one versioned migrator.
	pool, _ := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	_ = postgres.Migrate(ctx, pool, nil)
	box, _ := postgres.NewOutbox(pool, reg, nil)
	subscribers, _ := postgres.NewRepository(pool, box, subscriberMapping, nil)
	uow, _ := postgres.NewUnitOfWork(pool)

	// The bus: every command in one unit of work, retried on a conflict.
	retryConflicts, _ := cqrs.Retry(nil)
	bus, _ := cqrs.New(&cqrs.Config{CommandMiddleware: []cqrs.Middleware{
		cqrs.Logging(logger), cqrs.Recover(), cqrs.Validation(), retryConflicts, cqrs.Transaction(uow),
	}})
	_ = cqrs.HandleCommand(bus, func(ctx context.Context, c Subscribe) (struct{}, error) {
		s := &Subscriber{}
		s.Init(c.Email, "subscriber", s.apply)
		if err := s.Record(Subscribed(c)); err != nil {
			return struct{}{}, err
		}
		return struct{}{}, subscribers.Save(ctx, s)
	})

	// Kafka: one client, one producer; the relay publishes the outbox.
	client, _ := kafka.NewClient(&kafka.Config{Brokers: []string{"localhost:9092"}})
	relay, _ := outbox.NewRelay(box, client.Publisher(), reg, nil)
	go func() { _ = relay.Run(ctx) }()

	// A consumer applies each event once, in the inbox's transaction.
	inbox, _ := postgres.NewInbox(pool, nil)
	router, _ := eventbus.NewRouter(client, reg, nil)
	_ = eventbus.HandleOnce(router, "welcome-mails", inbox,
		func(ctx context.Context, e Subscribed, env aggregate.Envelope) error {
			tx, _ := postgres.TxFromContext(ctx) // the inbox row commits with this
			_, err := tx.Exec(ctx, `INSERT INTO welcome_mails (subscriber, email) VALUES ($1, $2)`, env.AggregateID, e.Email)
			return err
		})
	go func() { _ = router.Run(ctx) }()

	_, _ = cqrs.Send[struct{}](ctx, bus, Subscribe{Email: "ada@example.com"})
}
