// Command dddkit looks at and acts on what dddkit keeps for a service:
// the outbox (stats, failed events, retry, skip), the consumers' dead
// letters (list, show, replay, skip), consumer lag, projections, the schema
// (migrate) — and a doctor that checks all of it, one line per check.
//
//	go run github.com/dddkit/dddkit/cmd/dddkit doctor
//	dddkit outbox list --status failed
//	dddkit outbox retry --all-failed
//	dddkit deadletters replay HANDLER KEY
//
// It reads DATABASE_URL and KAFKA_BROKERS (or --database-url and
// --brokers); `dddkit help` lists every command and flag. This binary has
// no service code: `projections rebuild` needs a service's projection
// handlers, so a service that wants it links package
// github.com/dddkit/dddkit/dddkitcli into a command of its own.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/dddkit/dddkit/dddkitcli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the command without the process: the tests call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return (&dddkitcli.Command{}).Run(ctx, args, stdout, stderr)
}
