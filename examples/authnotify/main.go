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
	if err := run(ctx, cfg, runtime{Stdout: stdout, Logger: logger}); err != nil {
		logger.Error("authnotify failed", slog.Any("error", err))
		return exitFailed
	}
	return exitOK
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: authnotify [-h]

authnotify is the dddkit example system. It is configured through the
environment. With none of DATABASE_URL, KAFKA_BROKERS and RESEND_API_KEY
set it runs embedded (everything in memory, emails at /dev/emails); setting
any of them selects production mode, which needs all the variables marked
"production".

Environment:
`)
	for _, v := range config.Vars() {
		fmt.Fprintf(w, "  %-21s %s\n", v.Name, v.Help)
	}
	fmt.Fprint(w, `
Exit status: 0 after a clean shutdown (SIGINT, SIGTERM), 1 if the system
failed, 2 for bad configuration.
`)
}
