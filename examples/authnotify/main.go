// Command authnotify is the dddkit example system: sign-up with a one-time
// code sent by email, verification, log-in and password change, with the
// auth and notification modules talking only through domain events.
//
//	HTTP → command bus → User aggregate → event → outbox (same transaction)
//	     → relay → Kafka → notification consumer (inbox) → email job → Resend
//
// With nothing configured it runs embedded on 127.0.0.1:8080 (this machine
// only; production listens on :8080): in-memory stores, in-process
// transport and job queue, and a dev mailbox at /dev/emails.
// DATABASE_URL, KAFKA_BROKERS and RESEND_API_KEY (with EMAIL_FROM,
// JWT_SECRET and FIELD_ENCRYPTION_KEY) switch it to PostgreSQL, Kafka,
// River and Resend. Run it with -h for the variables; see README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // the system failed while running, or could not start
	exitConfig = 2 // bad or missing configuration, bad flags
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func realMain(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("authnotify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { usage(stdout) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if fs.NArg() > 0 && fs.Arg(0) == "catalog" {
		return catalog(fs.Args()[1:], stdout, stderr)
	}
	if fs.NArg() > 0 && fs.Arg(0) == "rebuild-activity" {
		return rebuildActivity(context.Background(), fs.Args()[1:], getenv, stdout, stderr)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "authnotify: unexpected arguments %q; it is configured through the environment (authnotify -h)\n", fs.Args())
		return exitConfig
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "authnotify: cannot start, the configuration is invalid:\n  %s\nRun authnotify -h for the list of variables.\n",
			strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return exitConfig
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopTracing, err := setupTracing(ctx, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "authnotify: cannot start: %v\n", err)
		return exitConfig
	}
	defer func() {
		if err := stopTracing(context.WithoutCancel(ctx)); err != nil {
			logger.Warn("OpenTelemetry: cannot flush the last spans", slog.Any("error", err))
		}
	}()
	if err := run(ctx, cfg, runtime{Stdout: stdout, Logger: logger}); err != nil {
		logger.Error("authnotify failed", slog.Any("error", err))
		return exitFailed
	}
	return exitOK
}

// catalog writes the catalogue of the events the service publishes (see
// eventbus.Registry.Catalog) to stdout: JSON, or Markdown with -markdown.
// docs/events.json and docs/events.md are its output.
func catalog(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("authnotify catalog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	markdown := fs.Bool("markdown", false, "write Markdown instead of JSON")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "authnotify catalog: unexpected arguments %q\n", fs.Args())
		return exitConfig
	}
	out, err := catalogText(*markdown)
	if err != nil {
		fmt.Fprintf(stderr, "authnotify catalog: %v\n", err)
		return exitFailed
	}
	if _, err := io.WriteString(stdout, out); err != nil {
		return exitFailed
	}
	return exitOK
}

// catalogText is the catalogue of the service's registry as indented
// JSON, or as Markdown.
func catalogText(markdown bool) (string, error) {
	reg, err := newRegistry("")
	if err != nil {
		return "", err
	}
	c := reg.Catalog()
	if markdown {
		return c.Markdown(), nil
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: authnotify [-h]
       authnotify catalog [-markdown]
       authnotify rebuild-activity

authnotify is the dddkit example system. It is configured through the
environment. With none of DATABASE_URL, KAFKA_BROKERS and RESEND_API_KEY
set it runs embedded (everything in memory, emails at /dev/emails); setting
any of them selects production mode, which needs all the variables marked
"production".

authnotify catalog writes the catalogue of the events it publishes (name,
schema version, topic, key and a JSON Schema of each payload, for teams
that generate their types in another language) to stdout as JSON, or as
Markdown with -markdown; docs/events.json and docs/events.md are its output.

authnotify rebuild-activity (production) empties the account activity read
model and resets its Kafka consumer group, so that the projection builds it
again from the start of the user topic when the service next runs. Stop
every replica first: it refuses while the group has members.

Environment:
`)
	for _, v := range config.Vars() {
		fmt.Fprintf(w, "  %-21s %s\n", v.Name, v.Help)
	}
	fmt.Fprint(w, `
Tracing (OpenTelemetry; off when none is set): OTEL_TRACES_EXPORTER
(otlp, console or none), OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME and
the SDK's other OTEL_* variables.

Exit status: 0 after a clean shutdown (SIGINT, SIGTERM), 1 if the system
failed, 2 for bad configuration.
`)
}
