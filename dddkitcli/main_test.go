package dddkitcli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkitcli"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/uuidv7"
	"github.com/dddkit/dddkit/postgres"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// sarama's metrics library starts one global ticker goroutine.
		goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command in-process with env as its whole environment.
func cli(t testing.TB, cmd *dddkitcli.Command, env map[string]string, args ...string) result {
	t.Helper()
	if cmd == nil {
		cmd = &dddkitcli.Command{}
	}
	cmd.Getenv = func(k string) string { return env[k] }
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := cmd.Run(ctx, args, &stdout, &stderr)
	t.Logf("dddkit %s → %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// jsonOf decodes a --json output.
func jsonOf[T any](t testing.TB, r result) T {
	t.Helper()
	require.Equal(t, dddkitcli.ExitOK, r.code, r.stderr)
	var v T
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &v), r.stdout)
	return v
}

type itemAdded struct {
	SKU string `json:"sku"`
}

func (itemAdded) EventName() string { return "cart.item_added" }

func registry(t testing.TB, topic string) *eventbus.Registry {
	t.Helper()
	reg := eventbus.NewRegistry(&eventbus.RegistryConfig{Source: "urn:dddkit:cli-test",
		Topic: func(string) string { return topic }})
	require.NoError(t, eventbus.Register[itemAdded](reg, eventbus.AggregateType("cart")))
	return reg
}

func cartEvent(agg string, v int64) aggregate.Envelope {
	return aggregate.Envelope{ID: uuidv7.New().String(), Name: itemAdded{}.EventName(), AggregateType: "cart",
		AggregateID: agg, Version: v, OccurredAt: time.Now(), Payload: itemAdded{SKU: agg}}
}

// database is a migrated schema of the test's own: the command's
// environment and an outbox on it.
type database struct {
	env  map[string]string
	pool *pgxpool.Pool
	ob   *postgres.Outbox
	reg  *eventbus.Registry
}

func newDatabase(t testing.TB, topic string) *database {
	t.Helper()
	pool, schema := pgtest.Schema(t)
	require.NoError(t, postgres.Migrate(context.Background(), pool, nil))
	reg := registry(t, topic)
	ob, err := postgres.NewOutbox(pool, reg, &postgres.OutboxConfig{LeaderPollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	return &database{env: map[string]string{dddkitcli.EnvDatabaseURL: pgtest.DatabaseURL(t), dddkitcli.EnvSchema: schema},
		pool: pool, ob: ob, reg: reg}
}

// The command line is checked before anything connects.
func TestUsage(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	r := cli(t, nil, env)
	require.Equal(t, dddkitcli.ExitUsage, r.code)
	require.Contains(t, r.stdout, "outbox stats")
	require.Equal(t, dddkitcli.ExitOK, cli(t, nil, env, "help").code)
	for _, args := range [][]string{
		{"nonsense"},
		{"outbox"},
		{"outbox", "frobnicate"},
		{"outbox", "retry"},                         // neither SEQ nor --all-failed
		{"outbox", "retry", "1", "--all-failed"},    // both
		{"outbox", "retry", "x"},                    // not a sequence number
		{"outbox", "skip", "1"},                     // no reason
		{"outbox", "skip", "1", "--reason", "spam"}, // no --by and no USER
		{"outbox", "list", "--status", "lost"},
		{"outbox", "show"},
		{"deadletters", "replay"},
		{"deadletters", "show", "handler-without-key"},
		{"deadletters", "list", "extra"},
		{"deadletters", "skip", "h", "k"},                     // no reason
		{"deadletters", "skip", "h", "k", "--reason", "spam"}, // no --by and no USER
		{"deadletters", "show", "h", "k", "--table", "parked=x", "--table", "dead_letters=x"},
		{"projections", "rebuild"},
		{"doctor"}, // nothing configured
		{"outbox", "stats", "--table", "nope=x"},
		{"outbox", "stats"}, // no DATABASE_URL
	} {
		r := cli(t, nil, env, args...)
		require.Equal(t, dddkitcli.ExitUsage, r.code, "%v: %s", args, r.stderr)
		require.NotEmpty(t, r.stderr, "%v says why", args)
	}
}

// requireCheck asserts that doctor's text output has a line for check
// name (a prefix of what follows the state) in state.
func requireCheck(t testing.TB, out, state, name string) {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		st, rest, _ := strings.Cut(line, " ")
		if st == state && strings.HasPrefix(strings.TrimLeft(rest, " "), name) {
			return
		}
	}
	t.Fatalf("no %s line for %q in\n%s", state, name, out)
}
