package dddkitcli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/projection"
)

// Exit codes of [Command.Run].
const (
	// ExitOK: the command did what it was asked; doctor found nothing
	// wrong.
	ExitOK = 0
	// ExitFailed: the command failed (the error is on stderr), or doctor
	// found something wrong (each line says what to do).
	ExitFailed = 1
	// ExitUsage: the command line or the configuration is wrong.
	ExitUsage = 2
)

// Environment variables the command reads; a flag of the same meaning
// wins over each.
const (
	EnvDatabaseURL  = "DATABASE_URL"  // --database-url
	EnvKafkaBrokers = "KAFKA_BROKERS" // --brokers, comma-separated
	EnvSchema       = "DDDKIT_SCHEMA" // --schema
)

// Command is the dddkit operator command. The zero value is the generic
// command that cmd/dddkit runs; a service that wants `projections
// rebuild` links this package and sets Projections (see the package
// documentation).
type Command struct {
	// Projections are the service's projection runners. Without them,
	// `projections status` reads the checkpoints alone and `projections
	// rebuild` refuses (it needs the projection's handlers).
	Projections []*projection.Runner
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// usageError is a wrong command line or configuration (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errProblems is returned by a command that ran but found problems (a
// red doctor): the output already says what; exit 1 without a message.
var errProblems = errors.New("problems found")

const usage = `dddkit — look at and act on dddkit's outbox, dead letters, consumers,
projections and schema.

Usage: dddkit COMMAND [ARGS] [FLAGS]

  outbox stats                      counts, oldest pending age, relay leader
  outbox list [--status S]          rows by status (pending, failed, scheduled,
              [--after SEQ] [--limit N]            published, discarded)
  outbox show SEQ                   one row: headers, payload, errors
  outbox retry SEQ... | --all-failed
                                    failed rows back to pending
  outbox skip SEQ... --reason WHY [--by WHO]
                                    give up on failed rows (kept, marked
                                    discarded, with who and why; WHO
                                    defaults to $USER)
  deadletters list [--handler H]    dead letters: per handler and key, the
                                    event it gave up on and the number of
                                    the key's events parked behind it
  deadletters show HANDLER KEY      one dead letter and its parked events
  deadletters replay HANDLER KEY    the consumer handles the dead event
                                    again, then the parked ones, in order
  deadletters skip HANDLER KEY --reason WHY [--by WHO]
                                    the consumer drops the dead event and
                                    handles the parked ones, in order
  consumers lag [--group G]...      lag per consumer group and partition
  projections status                checkpoint, head, lag of each projection
  projections rebuild NAME          reset and replay (needs the service's
                                    projections: see the package docs)
  migrate status | up | sql [--from V]
  doctor                            one line per check; exit 1 when red

Configuration (flags win over the environment):
  --database-url URL   $DATABASE_URL
  --brokers LIST       $KAFKA_BROKERS (comma-separated)
  --schema NAME        $DDDKIT_SCHEMA: the schema of the dddkit tables
  --table KIND=NAME    a table name other than the default, repeatable;
                       KIND: outbox, inbox, aggregates, aggregate_keys,
                       events, snapshots, migrations, processes, projections,
                       dead_letters, parked
  --kafka-version V    Kafka protocol version (default 3.6.0)
  --json               JSON for scripts instead of text

Exit status: 0 ok, 1 failed or doctor found problems, 2 usage.
`

// Run runs the command line args (without the program name), writing
// its output to stdout and errors to stderr, and returns the exit code
// ([ExitOK], [ExitFailed], [ExitUsage]).
func (c *Command) Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	r := &run{cmd: c, stdout: stdout, stderr: stderr}
	if c.Getenv != nil {
		r.getenv = c.Getenv
	} else {
		r.getenv = os.Getenv
	}
	defer r.close()
	err := r.dispatch(ctx, args)
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, errProblems):
		return ExitFailed
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "dddkit: %v\n(dddkit help shows the commands)\n", err)
		return ExitUsage
	case errors.Is(err, postgres.ErrNotMigrated):
		fmt.Fprintf(stderr, "dddkit: %v\n(dddkit migrate status shows what is missing; dddkit migrate up applies it)\n", err)
		return ExitFailed
	default:
		fmt.Fprintf(stderr, "dddkit: %v\n", err)
		return ExitFailed
	}
}

// run is one invocation: its configuration and the connections it
// opened.
type run struct {
	cmd            *Command
	stdout, stderr io.Writer
	getenv         func(string) string

	// configuration, from the common flags and the environment
	databaseURL  string
	brokers      []string
	tables       postgres.Tables
	kafkaVersion sarama.KafkaVersion
	json         bool

	pool   *pgxpool.Pool
	kafka  sarama.Client
	admin  sarama.ClusterAdmin
	client *kafka.Client // its producer publishes release messages
}

func (r *run) dispatch(ctx context.Context, args []string) error {
	group, rest := args[0], args[1:]
	sub := ""
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		sub, rest = rest[0], rest[1:]
	}
	type handler func(ctx context.Context, args []string) error
	table := map[string]map[string]handler{
		"outbox": {
			"stats": r.outboxStats, "list": r.outboxList, "show": r.outboxShow,
			"retry": r.outboxRetry, "skip": r.outboxSkip,
		},
		"deadletters": {
			"list": r.deadLettersList, "show": r.deadLettersShow,
			"replay": r.deadLettersReplay, "skip": r.deadLettersSkip,
		},
		"consumers":   {"lag": r.consumersLag},
		"projections": {"status": r.projectionsStatus, "rebuild": r.projectionsRebuild},
		"migrate":     {"status": r.migrateStatus, "up": r.migrateUp, "sql": r.migrateSQL},
	}
	if group == "doctor" {
		if sub != "" {
			rest = append([]string{sub}, rest...)
		}
		return r.doctor(ctx, rest)
	}
	subs, ok := table[group]
	if !ok {
		return usagef("unknown command %q", group)
	}
	h, ok := subs[sub]
	if !ok {
		names := make([]string, 0, len(subs))
		for n := range subs {
			names = append(names, n)
		}
		slices.Sort(names)
		if sub == "" {
			return usagef("%s needs a subcommand: %s", group, strings.Join(names, ", "))
		}
		return usagef("unknown command %q %q (have: %s)", group, sub, strings.Join(names, ", "))
	}
	return h(ctx, rest)
}

// flags returns a flag set with the common flags bound to r.
func (r *run) flags(name string) *flags {
	fs := flag.NewFlagSet("dddkit "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := &flags{FlagSet: fs, r: r}
	fs.StringVar(&f.databaseURL, "database-url", "", "PostgreSQL URL ($"+EnvDatabaseURL+")")
	fs.StringVar(&f.brokers, "brokers", "", "Kafka brokers, comma-separated ($"+EnvKafkaBrokers+")")
	fs.StringVar(&f.schema, "schema", "", "schema of the dddkit tables ($"+EnvSchema+")")
	fs.Func("table", "KIND=NAME: a table name other than the default", func(v string) error {
		f.tables = append(f.tables, v)
		return nil
	})
	fs.StringVar(&f.kafkaVersion, "kafka-version", "3.6.0", "Kafka protocol version")
	fs.BoolVar(&r.json, "json", false, "JSON output")
	return f
}

type flags struct {
	*flag.FlagSet
	r                            *run
	databaseURL, brokers, schema string
	kafkaVersion                 string
	tables                       []string
}

// parse parses args, flags and positional arguments in any order, and
// resolves the configuration. It returns the positional arguments.
func (f *flags) parse(args []string) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, usagef("%s: %v", f.Name(), err)
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	r := f.r
	r.databaseURL = cmpOr(f.databaseURL, r.getenv(EnvDatabaseURL))
	if b := cmpOr(f.brokers, r.getenv(EnvKafkaBrokers)); b != "" {
		for _, s := range strings.Split(b, ",") {
			if s = strings.TrimSpace(s); s != "" {
				r.brokers = append(r.brokers, s)
			}
		}
	}
	r.tables.Schema = cmpOr(f.schema, r.getenv(EnvSchema))
	for _, kv := range f.tables {
		kind, name, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, usagef("--table %q: want KIND=NAME", kv)
		}
		field := map[string]*string{
			"outbox": &r.tables.Outbox, "inbox": &r.tables.Inbox, "aggregates": &r.tables.Aggregates,
			"aggregate_keys": &r.tables.AggregateKeys, "events": &r.tables.Events, "snapshots": &r.tables.Snapshots,
			"migrations": &r.tables.Migrations, "processes": &r.tables.Processes, "projections": &r.tables.Projections,
			"dead_letters": &r.tables.DeadLetters, "parked": &r.tables.Parked,
		}[kind]
		if field == nil {
			return nil, usagef("--table %q: unknown kind %q", kv, kind)
		}
		*field = name
	}
	if err := r.tables.Validate(); err != nil {
		return nil, usagef("%v", err)
	}
	v, err := sarama.ParseKafkaVersion(f.kafkaVersion)
	if err != nil {
		return nil, usagef("--kafka-version: %v", err)
	}
	r.kafkaVersion = v
	return pos, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// db connects to PostgreSQL once.
func (r *run) db(ctx context.Context) (*pgxpool.Pool, error) {
	if r.pool != nil {
		return r.pool, nil
	}
	if r.databaseURL == "" {
		return nil, usagef("no database: set %s or --database-url", EnvDatabaseURL)
	}
	cfg, err := pgxpool.ParseConfig(r.databaseURL)
	if err != nil {
		return nil, usagef("%s: %v", EnvDatabaseURL, err)
	}
	cfg.MaxConns = 4
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "dddkit-cli"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(cctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	r.pool = pool
	return pool, nil
}

// outbox opens the outbox. The registry is empty: the operator's calls
// do not encode events.
func (r *run) outbox(ctx context.Context) (*postgres.Outbox, error) {
	pool, err := r.db(ctx)
	if err != nil {
		return nil, err
	}
	return postgres.NewOutbox(pool, eventbus.NewRegistry(nil), &postgres.OutboxConfig{Tables: r.tables})
}

// saramaConfig is the configuration of the command's Kafka client
// (metadata, offsets, consumer groups).
func (r *run) saramaConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "dddkit-cli"
	c.Version = r.kafkaVersion
	c.Metadata.AllowAutoTopicCreation = false
	c.Net.DialTimeout = 10 * time.Second
	c.Metadata.Retry.Max = 1
	return c
}

// kafkaClient connects to Kafka once.
func (r *run) kafkaClient() (sarama.Client, error) {
	if r.kafka != nil {
		return r.kafka, nil
	}
	if len(r.brokers) == 0 {
		return nil, usagef("no Kafka: set %s or --brokers", EnvKafkaBrokers)
	}
	c, err := sarama.NewClient(r.brokers, r.saramaConfig())
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka %s: %w", strings.Join(r.brokers, ","), err)
	}
	r.kafka = c
	return c, nil
}

// kafkaAdmin returns a cluster admin on the run's client.
func (r *run) kafkaAdmin() (sarama.ClusterAdmin, error) {
	if r.admin != nil {
		return r.admin, nil
	}
	c, err := r.kafkaClient()
	if err != nil {
		return nil, err
	}
	a, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		return nil, fmt.Errorf("kafka admin: %w", err)
	}
	r.admin = a
	return a, nil
}

func (r *run) close() {
	if r.client != nil {
		_ = r.client.Close()
	}
	if r.admin != nil {
		_ = r.admin.Close() // closes the client too
	} else if r.kafka != nil {
		_ = r.kafka.Close()
	}
	if r.pool != nil {
		r.pool.Close()
	}
}

// emit writes v as JSON with --json, and calls text otherwise.
func (r *run) emit(v any, text func(w io.Writer)) error {
	if r.json {
		enc := json.NewEncoder(r.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(r.stdout, 0, 4, 2, ' ', 0)
	text(tw)
	return tw.Flush()
}

// oneLine shortens s to one line of at most n runes, for tables.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if rs := []rune(s); len(rs) > n {
		return string(rs[:n-1]) + "…"
	}
	return s
}

// since renders how long ago t was, "-" for the zero time.
func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
