package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/auth/ports"
	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
	"github.com/dddkit/dddkit/examples/authnotify/internal/httpx"
)

// runtime holds what run needs besides the configuration: where to write,
// and the knobs tests turn.
type runtime struct {
	// Stdout gets the start-up banner; nil discards it.
	Stdout io.Writer
	// Logger gets the log lines; nil means slog.Default().
	Logger *slog.Logger
	// Listening, if set, is called with the server's address once it
	// accepts connections.
	Listening func(addr net.Addr)
	// Hasher hashes passwords; nil means argon2id with OWASP parameters.
	// Tests use cheaper parameters.
	Hasher domain.PasswordHasher
	// GaugeRefresh is how often /metrics' gauges are read (the
	// application's, and the outbox relay's StatsInterval); 0 means
	// defaultGaugeRefresh. Tests use a short one.
	GaugeRefresh time.Duration
	// HTTPClient is the Resend client's; nil means the default.
	HTTPClient *http.Client
}

// run starts the system described by cfg and serves HTTP until ctx ends,
// then shuts down gracefully: the server stops accepting and finishes
// the requests in flight, then the background components stop in the
// reverse order of their start (relay, consumers, job queue). It returns
// an error if the system cannot start or a component fails.
func run(ctx context.Context, cfg config.Config, rt runtime) error {
	if rt.Logger == nil {
		rt.Logger = slog.Default()
	}
	if rt.Stdout == nil {
		rt.Stdout = io.Discard
	}
	log := rt.Logger
	for _, name := range cfg.Generated {
		log.Warn("embedded mode: "+name+" not set; generated a random one for this run (tokens and codes do not survive a restart)", slog.String("variable", name))
	}

	m, err := newMetrics()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	var sys *system
	if cfg.Mode == config.Production {
		sys, err = buildProduction(ctx, cfg, rt, m)
	} else {
		sys, err = buildEmbedded(cfg, rt, m)
	}
	if err != nil {
		return fmt.Errorf("start %s mode: %w", cfg.Mode, err)
	}
	defer sys.close()

	httpPort, err := ports.NewHTTP(sys.bus, &ports.Config{Logger: log})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	httpPort.Mount(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := sys.ready(r.Context()); err != nil {
			log.WarnContext(r.Context(), "not ready", slog.Any("error", err))
			httpx.WriteProblem(w, httpx.NewProblem(http.StatusServiceUnavailable, err.Error()))
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", m.handler())
	sys.routes(mux)
	handler := httpx.CorrelationID(traceHTTP(httpx.Recover(log, m.instrument(httpx.Problems(mux)))))

	// Background components, in order; each one is up before the next
	// starts, and the server accepts requests only when all are.
	bg := newLifecycle(log)
	defer bg.stop()
	for _, c := range append(slices.Clip(sys.components), m.refreshGauges(cmp.Or(rt.GaugeRefresh, defaultGaugeRefresh))) {
		if err := bg.start(ctx, c); err != nil {
			return err
		}
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: %w", err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	banner(rt.Stdout, cfg, ln.Addr())
	log.Info("authnotify started", slog.String("mode", cfg.Mode.String()), slog.String("addr", ln.Addr().String()))
	if rt.Listening != nil {
		rt.Listening(ln.Addr())
	}

	var failure error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-served:
		failure = fmt.Errorf("HTTP server: %w", err)
	case failure = <-bg.failed:
	}

	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownPeriod)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("HTTP server: requests still running at the end of the shutdown period", slog.Any("error", err))
	}
	bg.stop()
	if failure != nil {
		return failure
	}
	log.Info("authnotify stopped")
	return nil
}

// lifecycle runs the background components and stops them in reverse
// order.
type lifecycle struct {
	log     *slog.Logger
	running []*running
	failed  chan error
}

type running struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
}

func newLifecycle(log *slog.Logger) *lifecycle {
	return &lifecycle{log: log, failed: make(chan error, 16)}
}

// start runs c and waits until it is up (c.started) or fails.
func (l *lifecycle) start(ctx context.Context, c component) error {
	cctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &running{name: c.name, cancel: cancel, done: make(chan struct{})}
	l.running = append(l.running, r)
	exited := make(chan error, 1)
	go func() {
		defer close(r.done)
		err := c.run(cctx)
		if cctx.Err() == nil { // returned before it was asked to stop
			if err == nil {
				err = errors.New("stopped unexpectedly")
			}
			err = fmt.Errorf("%s: %w", c.name, err)
			exited <- err
			l.failed <- err
		}
	}()
	if c.started == nil {
		return nil
	}
	select {
	case <-c.started:
		return nil
	case err := <-exited:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: did not start within 30s", c.name)
	}
}

// stop stops the running components, last started first, each one
// completely before the next. It may be called more than once.
func (l *lifecycle) stop() {
	for i := len(l.running) - 1; i >= 0; i-- {
		r := l.running[i]
		r.cancel()
		<-r.done
		l.log.Debug("stopped", slog.String("component", r.name))
	}
	l.running = nil
}

// banner tells the person who just started the program where it runs and
// how to try it.
func banner(w io.Writer, cfg config.Config, addr net.Addr) {
	base := "http://" + displayAddr(addr)
	if cfg.Mode == config.Production {
		fmt.Fprintf(w, "authnotify is running in production mode (PostgreSQL, Kafka, River, Resend) on %s, listening on %s.\n", base, listening(addr))
		return
	}
	curlBase := strings.TrimPrefix(base, "http://")
	fmt.Fprintf(w, `authnotify is running in EMBEDDED mode on %s, listening on %s
  Everything lives in this process and in memory: users, outbox, event bus, email jobs.
  Emails are not sent; read them at %s/dev/emails. Nothing survives a restart.
  Production mode: set DATABASE_URL, KAFKA_BROKERS, RESEND_API_KEY and the rest (authnotify -h).

Try it:
  curl -i %s/auth/register -H 'Content-Type: application/json' -d '{"email":"ada@example.com","password":"correct horse battery"}'
  curl -s %s/dev/emails

`, base, listening(addr), base, curlBase, curlBase)
}

// listening says which address the server listens on, and who can reach
// it: "127.0.0.1:8080 (this machine only; HTTP_ADDR changes it)".
func listening(addr net.Addr) string {
	s := addr.String()
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return s
	}
	switch ip := net.ParseIP(host); {
	case host == "" || (ip != nil && ip.IsUnspecified()):
		return s + " (every network interface; HTTP_ADDR changes it)"
	case host == "localhost" || (ip != nil && ip.IsLoopback()):
		return s + " (this machine only; HTTP_ADDR changes it)"
	default:
		return s + " (HTTP_ADDR changes it)"
	}
}

// displayAddr turns a listening address into one a browser or curl can
// use: an unspecified host becomes localhost.
func displayAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
