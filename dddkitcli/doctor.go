package dddkitcli

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
)

// check is one line of doctor's report.
type check struct {
	Name string `json:"name"`
	// State is "ok", "fail" or "skip" (not configured).
	State string `json:"state"`
	// Detail says what was found; on failure, what to do.
	Detail string `json:"detail"`
}

func ok(name, format string, args ...any) check {
	return check{Name: name, State: "ok", Detail: fmt.Sprintf(format, args...)}
}

func fail(name, format string, args ...any) check {
	return check{Name: name, State: "fail", Detail: fmt.Sprintf(format, args...)}
}

func skip(name, format string, args ...any) check {
	return check{Name: name, State: "skip", Detail: fmt.Sprintf(format, args...)}
}

// topicSpec is a topic doctor expects, with its partition count (0: any).
type topicSpec struct {
	name       string
	partitions int
}

type doctorOptions struct {
	maxPendingAge time.Duration
	maxLag        int64
	topics        []topicSpec
	groups        []string
}

// doctor checks, one line each: the schema is migrated, no outbox event
// failed, the relay has a leader and is not behind, no consumer holds
// keys back behind dead letters, Kafka is reachable,
// the topics exist with their partitions, the consumers are not
// lagging. It returns errProblems when a check fails.
func (r *run) doctor(ctx context.Context, args []string) error {
	f := r.flags("doctor")
	var o doctorOptions
	f.DurationVar(&o.maxPendingAge, "max-pending-age", 30*time.Second, "the oldest pending event may be this old")
	f.Int64Var(&o.maxLag, "max-lag", 1000, "a consumer group may lag this many records")
	f.Func("topic", "NAME[:PARTITIONS]: a topic that must exist (repeatable)", func(v string) error {
		name, parts, found := strings.Cut(v, ":")
		t := topicSpec{name: name}
		if found {
			n, err := strconv.Atoi(parts)
			if err != nil || n <= 0 {
				return fmt.Errorf("%q: partitions must be a positive number", v)
			}
			t.partitions = n
		}
		if name == "" {
			return fmt.Errorf("%q: empty topic name", v)
		}
		o.topics = append(o.topics, t)
		return nil
	})
	f.Func("group", "a consumer group to check for lag (repeatable; default every group)", func(v string) error {
		o.groups = append(o.groups, v)
		return nil
	})
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("doctor takes no arguments")
	}
	if r.databaseURL == "" && len(r.brokers) == 0 {
		return usagef("doctor: nothing to check: set %s and/or %s", EnvDatabaseURL, EnvKafkaBrokers)
	}
	var checks []check
	if r.databaseURL == "" {
		checks = append(checks, skip("database", "%s not set", EnvDatabaseURL))
	} else {
		checks = append(checks, r.databaseChecks(ctx, o)...)
	}
	if len(r.brokers) == 0 {
		checks = append(checks, skip("kafka", "%s not set", EnvKafkaBrokers))
	} else {
		checks = append(checks, r.kafkaChecks(o)...)
	}
	healthy := !slices.ContainsFunc(checks, func(c check) bool { return c.State == "fail" })
	err = r.emit(map[string]any{"ok": healthy, "checks": checks}, func(w io.Writer) {
		for _, c := range checks {
			fmt.Fprintf(w, "%s\t%s\t%s\n", strings.ToUpper(c.State), c.Name, c.Detail)
		}
	})
	if err != nil {
		return err
	}
	if !healthy {
		return errProblems
	}
	return nil
}

// databaseChecks: schema, failed events, relay leader, relay lag.
func (r *run) databaseChecks(ctx context.Context, o doctorOptions) []check {
	pool, err := r.db(ctx)
	if err != nil {
		return []check{fail("database", "cannot connect: %v; check %s", err, EnvDatabaseURL)}
	}
	current, target, err := postgres.Version(ctx, pool, &r.tables)
	switch {
	case err != nil:
		return []check{fail("schema", "cannot read the schema version: %v", err)}
	case current < target:
		return []check{fail("schema", "version %d, this dddkit needs %d: run dddkit migrate up (or apply dddkit migrate sql --from %d)",
			current, target, current)}
	}
	checks := []check{ok("schema", "version %d, up to date", current)}
	ob, err := r.outbox(ctx)
	if err != nil {
		return append(checks, fail("outbox", "%v", err))
	}
	st, err := ob.Stats(ctx)
	if err != nil {
		return append(checks, fail("outbox", "cannot read the outbox: %v", err))
	}
	if st.Failed > 0 {
		checks = append(checks, fail("outbox failed", "%d events failed for good and hold back their aggregates' later events: "+
			"dddkit outbox list --status failed, fix the cause, then dddkit outbox retry --all-failed (or skip SEQ --reason)", st.Failed))
	} else {
		checks = append(checks, ok("outbox failed", "no failed events"))
	}
	checks = append(checks, relayLeaderCheck(ctx, ob, st))
	if st.OldestPending > o.maxPendingAge {
		checks = append(checks, fail("relay behind", "%d events pending, the oldest for %s (more than --max-pending-age %s): "+
			"the relay is not running, cannot reach Kafka, or is blocked; see its logs", st.Pending, st.OldestPending.Round(time.Second), o.maxPendingAge))
	} else {
		checks = append(checks, ok("relay behind", "%d events pending, the oldest for %s", st.Pending, st.OldestPending.Round(time.Millisecond)))
	}
	return append(checks, r.deadLettersCheck(ctx))
}

// deadLettersCheck: no consumer holds a key back behind a dead letter.
func (r *run) deadLettersCheck(ctx context.Context) check {
	const name = "dead letters"
	store, err := r.deadLetters(ctx)
	if err != nil {
		return fail(name, "%v", err)
	}
	dls, err := store.List(ctx, "")
	if err != nil {
		return fail(name, "cannot read the dead letters: %v", err)
	}
	if len(dls) == 0 {
		return ok(name, "no dead letters")
	}
	parked, releasing := 0, 0
	handlers := map[string]int{}
	for _, dl := range dls {
		parked += dl.Parked
		handlers[dl.Handler]++
		if dl.Release != eventbus.ReleaseNone {
			releasing++
		}
	}
	var per []string
	for _, h := range slices.Sorted(maps.Keys(handlers)) {
		per = append(per, fmt.Sprintf("%s: %d", h, handlers[h]))
	}
	detail := fmt.Sprintf("%d dead letters holding back %d parked events (%s)", len(dls), parked, strings.Join(per, ", "))
	if releasing > 0 {
		detail += fmt.Sprintf(", %d with a release asked for that the consumer has not done yet (is it running?)", releasing)
	}
	return fail(name, "%s: dddkit deadletters list shows them; fix the cause, then dddkit deadletters replay HANDLER KEY "+
		"(or skip HANDLER KEY --reason WHY)", detail)
}

// relayLeaderCheck: relays hold every shard of the outbox. It is the
// one place that knows how leadership shows (postgres.Outbox.Leaders).
func relayLeaderCheck(ctx context.Context, ob *postgres.Outbox, st outbox.Stats) check {
	leaders, err := ob.Leaders(ctx)
	if err != nil {
		return fail("relay leader", "cannot read pg_locks: %v", err)
	}
	led := map[int]bool{}
	shards := 0
	var texts []string
	for _, l := range leaders {
		for _, s := range l.Shards {
			led[s] = true
		}
		shards = max(shards, l.ShardCount)
		texts = append(texts, leaderText(l))
	}
	if len(led) == 0 {
		return fail("relay leader", "no relay holds a shard of the outbox, so nothing is published (%d events pending): "+
			"start the service that runs the outbox relay, or check its logs for why its relay stopped", st.Pending)
	}
	var missing []int
	for s := range shards {
		if !led[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		return fail("relay leader", "shards %s of %d have no relay, so their events wait (a hand-over takes up to the outbox's "+
			"LeaderPollInterval: run doctor again; if it stays, check the relays' logs): %s",
			shardList(missing), shards, strings.Join(texts, "; "))
	}
	return ok("relay leader", "%s", strings.Join(texts, "; "))
}

// kafkaChecks: reachable, topics, consumer lag.
func (r *run) kafkaChecks(o doctorOptions) []check {
	client, err := r.kafkaClient()
	if err != nil {
		return []check{fail("kafka", "%v: check %s and the network", err, EnvKafkaBrokers)}
	}
	var checks []check
	if err := client.RefreshMetadata(); err != nil {
		return []check{fail("kafka", "metadata from %s: %v", strings.Join(r.brokers, ","), err)}
	}
	checks = append(checks, ok("kafka", "%d brokers reachable through %s", len(client.Brokers()), strings.Join(r.brokers, ",")))
	if len(o.topics) == 0 {
		checks = append(checks, skip("topics", "none named (--topic NAME[:PARTITIONS])"))
	}
	for _, t := range o.topics {
		checks = append(checks, topicCheck(client, t))
	}
	groups := o.groups
	lags, err := r.lags(groups)
	if err != nil {
		return append(checks, fail("consumers", "%v", err))
	}
	var behind, fine []string
	for _, g := range lags {
		switch {
		case len(g.Partitions) == 0:
			behind = append(behind, fmt.Sprintf("%s has no committed offsets (not started yet, or the group name is wrong)", g.Group))
		case g.Lag > o.maxLag:
			behind = append(behind, fmt.Sprintf("%s lags %d records (%d members, %s)", g.Group, g.Lag, g.Members, g.State))
		default:
			fine = append(fine, fmt.Sprintf("%s %d", g.Group, g.Lag))
		}
	}
	switch {
	case len(behind) > 0:
		checks = append(checks, fail("consumers", "%s (more than --max-lag %d): is the consumer running and keeping up? dddkit consumers lag shows each partition",
			strings.Join(behind, "; "), o.maxLag))
	case len(fine) == 0:
		checks = append(checks, skip("consumers", "no consumer groups"))
	default:
		checks = append(checks, ok("consumers", "lag %s", strings.Join(fine, ", ")))
	}
	return checks
}

func topicCheck(client sarama.Client, t topicSpec) check {
	name := "topic " + t.name
	parts, err := client.Partitions(t.name)
	switch {
	case err != nil:
		return fail(name, "missing or unreadable (%v): provision it (kafka.Client.Provision at the service's start-up)", err)
	case t.partitions > 0 && len(parts) != t.partitions:
		return fail(name, "%d partitions, want %d: keys would move between partitions; create the topic with %d", len(parts), t.partitions, t.partitions)
	}
	return ok(name, "%d partitions", len(parts))
}
