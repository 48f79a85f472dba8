package main

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"time"

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
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/projection"
)

// buildEmbedded wires the embedded default: dddkit's in-memory repository
// and outbox, the in-process event transport, the in-process job queue and
// the dev mailbox. The path of an event is the production one with every
// backend swapped for its in-memory twin:
//
//	repository.Memory → outbox.Memory → outbox.Relay → MemoryTransport
//	  → notification consumer (memory inbox) → JobQueue → Mailer → DevMailbox
func buildEmbedded(cfg config.Config, rt runtime, m *metrics) (*system, error) {
	log := rt.Logger
	sh, err := buildShared(cfg)
	if err != nil {
		return nil, err
	}

	// Auth: users in memory, their events into the in-memory outbox in the
	// same atomic step.
	box, err := outbox.NewMemory(sh.registry)
	if err != nil {
		return nil, err
	}
	users, err := adapters.NewMemory(sh.factory, box)
	if err != nil {
		return nil, err
	}
	hasher, err := limitHashes(cfg, rt.Hasher)
	if err != nil {
		return nil, err
	}
	activity := adapters.NewMemoryActivity()
	expiry, err := adapters.NewExpiry(box) // deadlines in the in-memory outbox
	if err != nil {
		return nil, err
	}
	bus, err := newBus(log, nil, app.Deps{Users: users, Factory: sh.factory, Tokens: sh.tokens, Hasher: hasher, Logger: log,
		Throttle: throttle.NewMemory(throttleConfig(cfg)), // one process: in memory
		Activity: activity, Expiry: expiry, UnverifiedTTL: cfg.UnverifiedAccountTTL,
	})
	if err != nil {
		return nil, err
	}

	// Notification: consumer → job queue → mailer → dev mailbox.
	mailbox := nadapters.NewDevMailbox(&nadapters.DevMailboxConfig{Logger: log})
	templates, err := ndomain.NewTemplates("")
	if err != nil {
		return nil, err
	}
	mailer, err := napp.NewMailer(mailbox, sh.cipher, templates)
	if err != nil {
		return nil, err
	}
	queue, err := nadapters.NewJobQueue(mailer.Deliver, &nadapters.JobQueueConfig{Logger: log})
	if err != nil {
		return nil, err
	}
	handlers, err := napp.NewEventHandlers(queue, sh.cipher)
	if err != nil {
		return nil, err
	}

	// The event bus, in process.
	transport := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Logger: log})
	router, err := eventbus.NewRouter(transport, sh.registry, &eventbus.RouterConfig{
		Logger:          log,
		DeadLetterTopic: cfg.TopicPrefix + eventbus.DefaultDeadLetterTopic,
		CloseTimeout:    10 * time.Second,
	})
	if err != nil {
		_ = transport.Close()
		return nil, err
	}
	if err := nports.Subscribe(router, cfg.GroupPrefix+nports.HandlerName, eventbus.NewMemoryInbox(), handlers); err != nil {
		_ = transport.Close()
		return nil, err
	}
	if err := ports.ExpireAccounts(router, cfg.GroupPrefix+ports.ExpiryHandlerName, bus); err != nil {
		_ = transport.Close()
		return nil, err
	}
	// The account activity read model, from the published user events.
	activityProjection, err := adapters.ActivityProjection(cfg.GroupPrefix+adapters.ActivityProjectionName, sh.registry, activity)
	if err == nil {
		err = activityProjection.Subscribe(router, eventbus.NewMemoryInbox(), projection.NewMemoryStore())
	}
	if err != nil {
		_ = transport.Close()
		return nil, err
	}
	relay, err := outbox.NewRelay(box, transport.Publisher(), sh.registry, &outbox.RelayConfig{
		Logger:        log,
		StatsInterval: cmp.Or(rt.GaugeRefresh, defaultGaugeRefresh),
	})
	if err != nil {
		_ = transport.Close()
		return nil, err
	}

	m.gauges = func(_ context.Context, g *gaugeWriter) {
		s := queue.Stats()
		for _, v := range []struct {
			name, help string
			value      int64
		}{
			{"enqueued", "Email jobs accepted.", s.Enqueued},
			{"duplicates", "Email jobs dropped because their event had one already.", s.Duplicates},
			{"succeeded", "Email jobs done.", s.Succeeded},
			{"retried", "Email job attempts that failed and were scheduled again.", s.Retried},
			{"failed", "Email jobs given up.", s.Failed},
		} {
			g.counter("authnotify_email_jobs_total", "Email jobs of the in-process queue by outcome, since start.", float64(v.value), "outcome", v.name)
		}
		g.gauge("authnotify_email_jobs", "Email jobs by state.", float64(s.Pending), "state", "pending")
		g.gauge("authnotify_email_jobs", "Email jobs by state.", float64(s.Running), "state", "running")
	}

	return &system{
		bus:    bus,
		routes: func(mux *http.ServeMux) { mux.Handle("GET /dev/emails", mailbox.Handler()) },
		ready:  func(context.Context) error { return nil },
		components: []component{
			{name: "email job queue", run: func(ctx context.Context) error {
				if err := queue.Start(context.WithoutCancel(ctx)); err != nil {
					return err
				}
				<-ctx.Done()
				stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				if err := queue.Stop(stopCtx); err != nil {
					log.Warn("email job queue: stop", slog.Any("error", err))
				}
				return nil
			}},
			{name: "event consumers", run: router.Run, started: router.Running()},
			{name: "outbox relay", run: relay.Run},
		},
		close: func() { _ = transport.Close() },
	}, nil
}
