package dddkitcli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkitcli"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/retry"
)

func newKafkaClient(t testing.TB) *kafka.Client {
	t.Helper()
	c, err := kafka.NewClient(&kafka.Config{Brokers: kafkatest.Brokers(t), Version: kafkatest.Version})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// commitAt commits offset for every partition of topic for group, as a
// consumer that has read up to there.
func commitAt(t testing.TB, group, topic string, offset func(partition int32) int64) {
	t.Helper()
	client, err := sarama.NewClient(kafkatest.Brokers(t), kafkatest.Config(t))
	require.NoError(t, err)
	defer client.Close()
	parts, err := client.Partitions(topic)
	require.NoError(t, err)
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	require.NoError(t, err)
	for _, p := range parts {
		pom, err := om.ManagePartition(topic, p)
		require.NoError(t, err)
		pom.MarkOffset(offset(p), "")
		defer pom.Close()
	}
	om.Commit()
	require.NoError(t, om.Close())
}

func highWater(t testing.TB, topic string, p int32) int64 {
	t.Helper()
	client, err := sarama.NewClient(kafkatest.Brokers(t), kafkatest.Config(t))
	require.NoError(t, err)
	defer client.Close()
	hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
	require.NoError(t, err)
	return hw
}

// The must-show of the doctor: red while the relay is stopped with
// events pending, green once it runs and has published them, red again
// when it stops.
func TestDoctorRedWhileTheRelayIsStoppedGreenWhenItRuns(t *testing.T) {
	t.Parallel()
	topic := kafkatest.Topic(t, 3)
	db := newDatabase(t, topic)
	group := strings.ReplaceAll(dddkittest.UniqueName(t), "_", "-")
	env := db.env
	env[dddkitcli.EnvKafkaBrokers] = strings.Join(kafkatest.Brokers(t), ",")
	ctx := context.Background()
	doctor := func() result {
		return cli(t, nil, env, "doctor", "--topic", topic+":3", "--group", group, "--kafka-version", "3.6.0")
	}

	require.NoError(t, db.ob.Write(ctx, cartEvent("c1", 1), cartEvent("c2", 1), cartEvent("c1", 2)))
	commitAt(t, group, topic, func(int32) int64 { return 0 }) // a consumer that has read everything so far (nothing)
	r := doctor()
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	requireCheck(t, r.stdout, "FAIL", "relay leader")
	require.Contains(t, r.stdout, "3 events pending")
	requireCheck(t, r.stdout, "OK", "schema")
	requireCheck(t, r.stdout, "OK", "topic "+topic)

	client := newKafkaClient(t)
	relay, err := outbox.NewRelay(db.ob, client.Publisher(), db.reg, nil)
	require.NoError(t, err)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	defer func() {
		stop()
		<-done
	}()
	testinfra.Eventually(t, 60*time.Second, func() bool {
		st, err := db.ob.Stats(ctx)
		return err == nil && st.Pending == 0 && relay.IsLeader()
	}, "the relay did not publish the pending events")
	// The consumer group reads what the relay published.
	commitAt(t, group, topic, func(p int32) int64 { return highWater(t, topic, p) })

	r = doctor()
	require.Equal(t, dddkitcli.ExitOK, r.code, r.stdout)
	require.NotContains(t, r.stdout, "FAIL")
	requireCheck(t, r.stdout, "OK", "relay leader")
	requireCheck(t, r.stdout, "OK", "consumers")
	type report struct {
		OK     bool
		Checks []struct{ Name, State string }
	}
	rep := jsonOf[report](t, cli(t, nil, env, "doctor", "--json", "--topic", topic+":3", "--group", group))
	require.True(t, rep.OK)
	var names []string
	for _, c := range rep.Checks {
		names = append(names, c.Name)
		require.Equal(t, "ok", c.State, c.Name)
	}
	require.Equal(t, []string{"schema", "outbox failed", "relay leader", "relay behind", "dead letters", "kafka", "topic " + topic, "consumers"}, names)

	// A wrong partition count, a lagging group: red, each on its line.
	require.NoError(t, db.ob.Write(ctx, cartEvent("c3", 1)))
	testinfra.Eventually(t, 60*time.Second, func() bool {
		st, err := db.ob.Stats(ctx)
		return err == nil && st.Pending == 0
	}, "the relay did not publish")
	r = cli(t, nil, env, "doctor", "--topic", topic+":6", "--group", group, "--max-lag", "0")
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	requireCheck(t, r.stdout, "FAIL", "topic "+topic)
	require.Contains(t, r.stdout, "3 partitions, want 6")
	requireCheck(t, r.stdout, "FAIL", "consumers")
	require.Contains(t, r.stdout, group+" lags 1 records")

	stop()
	require.NoError(t, <-done)
	done <- nil
	r = doctor()
	require.Equal(t, dddkitcli.ExitFailed, r.code, "no relay leads any more")
	requireCheck(t, r.stdout, "FAIL", "relay leader")
}

// consumers lag shows each partition of a group: committed offset,
// high-water mark and their difference.
func TestConsumersLag(t *testing.T) {
	t.Parallel()
	topic := kafkatest.Topic(t, 2)
	group := strings.ReplaceAll(dddkittest.UniqueName(t), "_", "-")
	env := map[string]string{dddkitcli.EnvKafkaBrokers: strings.Join(kafkatest.Brokers(t), ",")}
	client := newKafkaClient(t)
	pub, err := eventbus.NewPublisher(client.Publisher(), registry(t, topic))
	require.NoError(t, err)
	var evs []aggregate.Envelope
	for i := range 6 {
		evs = append(evs, cartEvent(fmt.Sprint("cart-", i), 1))
	}
	require.NoError(t, pub.Publish(context.Background(), evs...))
	hw := []int64{highWater(t, topic, 0), highWater(t, topic, 1)}
	require.Equal(t, int64(6), hw[0]+hw[1])
	commitAt(t, group, topic, func(p int32) int64 { return min(hw[p], 1) })

	type lag struct {
		Group      string
		Lag        int64
		Partitions []struct {
			Topic     string
			Partition int32
			Committed int64
			HighWater int64 `json:"high_water"`
			Lag       int64
		}
	}
	lags := jsonOf[[]lag](t, cli(t, nil, env, "consumers", "lag", "--group", group, "--json"))
	require.Len(t, lags, 1)
	require.Equal(t, group, lags[0].Group)
	require.Len(t, lags[0].Partitions, 2)
	var want int64
	for i, p := range lags[0].Partitions {
		require.Equal(t, topic, p.Topic)
		require.Equal(t, int32(i), p.Partition)
		require.Equal(t, hw[i], p.HighWater)
		require.Equal(t, hw[i]-min(hw[i], 1), p.Lag)
		want += p.Lag
	}
	require.Equal(t, want, lags[0].Lag)
	r := cli(t, nil, env, "consumers", "lag", group)
	require.Equal(t, dddkitcli.ExitOK, r.code)
	require.Contains(t, r.stdout, fmt.Sprintf("total lag: %s %d", group, want))
}

// A HandleOnce handler on Kafka with the PostgreSQL inbox and dead
// letters gives up on key A's event 2 while a flag is set: A's events 3..5
// park behind it while B is handled, and C's event 1 fails for good.
// deadletters list and show read the store; doctor is red; after the fix,
// deadletters replay applies A's 2..5 in order, deadletters skip drops C1
// and applies C2 and C3; the list is empty and doctor's line is green.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	topic, dlt := kafkatest.Topic(t, 3), kafkatest.Topic(t, 1)
	db := newDatabase(t, topic)
	env := db.env
	env[dddkitcli.EnvKafkaBrokers] = strings.Join(kafkatest.Brokers(t), ",")
	ctx := context.Background()
	_, err := db.pool.Exec(ctx, `CREATE TABLE effects (seq bigserial, key text NOT NULL, version bigint NOT NULL)`)
	require.NoError(t, err)
	inbox, err := postgres.NewInbox(db.pool, nil)
	require.NoError(t, err)
	store, err := postgres.NewDeadLetters(db.pool, nil)
	require.NoError(t, err)
	client := newKafkaClient(t)
	router, err := eventbus.NewRouter(client, db.reg, &eventbus.RouterConfig{DeadLetterTopic: dlt, DeadLetters: store,
		Retry:  retry.Policy{MaxAttempts: 2, BaseDelay: 5 * time.Millisecond, MaxDelay: 10 * time.Millisecond},
		Logger: slog.New(slog.DiscardHandler), MaxWait: 20 * time.Millisecond})
	require.NoError(t, err)
	const handler = "pricing"
	var broken atomic.Bool
	broken.Store(true)
	require.NoError(t, eventbus.HandleOnce(router, handler, inbox, func(ctx context.Context, _ itemAdded, env aggregate.Envelope) error {
		switch {
		case env.AggregateID == "A" && env.Version == 2 && broken.Load():
			return errors.New("price list missing")
		case env.AggregateID == "C" && env.Version == 1:
			return eventbus.Permanent(errors.New("no such cart"))
		}
		tx, ok := postgres.TxFromContext(ctx)
		if !ok {
			return errors.New("no transaction in the handler's context")
		}
		_, err := tx.Exec(ctx, `INSERT INTO effects (key, version) VALUES ($1, $2)`, env.AggregateID, env.Version)
		return err
	}))
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- router.Run(rctx) }()
	defer func() {
		stop()
		<-done
	}()
	<-router.Running()
	pub, err := eventbus.NewPublisher(client.Publisher(), db.reg)
	require.NoError(t, err)
	var as, cs []aggregate.Envelope
	for v := int64(1); v <= 5; v++ {
		as = append(as, cartEvent("A", v))
	}
	for v := int64(1); v <= 3; v++ {
		cs = append(cs, cartEvent("C", v))
	}
	as[1].Metadata.CorrelationID = "req-7"
	require.NoError(t, pub.Publish(ctx, append(append(slices.Clone(as), cartEvent("B", 1)), cs...)...))
	versions := func(key string) []int64 {
		rows, err := db.pool.Query(ctx, `SELECT version FROM effects WHERE key = $1 ORDER BY seq`, key)
		require.NoError(t, err)
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		return vs
	}

	type deadLetter struct {
		Handler, Key, Topic, Reason, Release string
		EventName                            string    `json:"event_name"`
		EventID                              string    `json:"event_id"`
		DeadAt                               time.Time `json:"dead_at"`
		Parked                               int
	}
	var dls []deadLetter
	testinfra.Eventually(t, 60*time.Second, func() bool {
		dls = jsonOf[[]deadLetter](t, cli(t, nil, env, "deadletters", "list", "--json"))
		return len(dls) == 2 && dls[0].Parked+dls[1].Parked == 5 && len(versions("B")) == 1
	}, "A not parked with 3..5, C with 2..3, or B not handled")
	slices.SortFunc(dls, func(a, b deadLetter) int { return strings.Compare(a.Key, b.Key) })
	a := dls[0]
	require.Equal(t, deadLetter{Handler: handler, Key: "A", Topic: topic, Reason: a.Reason, EventName: itemAdded{}.EventName(),
		EventID: as[1].ID, DeadAt: a.DeadAt, Parked: 3}, a)
	require.Contains(t, a.Reason, "price list missing")
	require.False(t, a.DeadAt.IsZero())
	require.Equal(t, "C", dls[1].Key)
	require.Equal(t, cs[0].ID, dls[1].EventID)
	require.Equal(t, 2, dls[1].Parked)
	require.Equal(t, []int64{1}, versions("A"), "A waits behind its event 2")
	require.Equal(t, []int64{1}, versions("B"))
	require.Empty(t, versions("C"))
	require.Empty(t, jsonOf[[]deadLetter](t, cli(t, nil, env, "deadletters", "list", "--handler", "other", "--json")))
	r := cli(t, nil, env, "deadletters", "list")
	require.Equal(t, dddkitcli.ExitOK, r.code)
	require.Contains(t, r.stdout, "price list missing")

	type event struct {
		EventID   string `json:"event_id"`
		EventName string `json:"event_name"`
		Headers   map[string]string
		Payload   json.RawMessage
	}
	type detail struct {
		deadLetter
		Event        event
		ParkedEvents []event `json:"parked_events"`
	}
	shown := jsonOf[detail](t, cli(t, nil, env, "deadletters", "show", handler, "A", "--json"))
	require.Equal(t, as[1].ID, shown.EventID)
	require.Equal(t, as[1].ID, shown.Event.EventID)
	require.Equal(t, "req-7", shown.Event.Headers[eventbus.HeaderCorrelationID])
	require.JSONEq(t, `{"sku":"A"}`, string(shown.Event.Payload))
	var parkedIDs []string
	for _, ev := range shown.ParkedEvents {
		parkedIDs = append(parkedIDs, ev.EventID)
	}
	require.Equal(t, []string{as[2].ID, as[3].ID, as[4].ID}, parkedIDs, "A's parked events in order")
	r = cli(t, nil, env, "deadletters", "show", handler, "A")
	require.Equal(t, dddkitcli.ExitOK, r.code)
	require.Contains(t, r.stdout, "3 events, handled in this order")
	r = cli(t, nil, env, "deadletters", "show", handler, "B")
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	require.Contains(t, r.stderr, "no dead letter")

	dbOnly := map[string]string{dddkitcli.EnvDatabaseURL: env[dddkitcli.EnvDatabaseURL], dddkitcli.EnvSchema: env[dddkitcli.EnvSchema]}
	r = cli(t, nil, dbOnly, "doctor")
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	requireCheck(t, r.stdout, "FAIL", "dead letters")
	require.Contains(t, r.stdout, "2 dead letters holding back 5 parked events")
	r = cli(t, nil, dbOnly, "deadletters", "replay", handler, "A")
	require.Equal(t, dddkitcli.ExitUsage, r.code, "a release needs Kafka")

	broken.Store(false)
	r = cli(t, nil, env, "deadletters", "replay", handler, "A")
	require.Equal(t, dddkitcli.ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "then the 3 events of key \"A\" parked behind it")

	type released struct {
		Handler, Key, Mode, By, Reason string
		EventID                        string `json:"event_id"`
		Parked                         int
	}
	rel := jsonOf[released](t, cli(t, nil, env, "deadletters", "skip", handler, "C", "--reason", "cart deleted by support", "--by", "ops", "--json"))
	require.Equal(t, released{Handler: handler, Key: "C", Mode: "skip", By: "ops", Reason: "cart deleted by support",
		EventID: cs[0].ID, Parked: 2}, rel)

	testinfra.Eventually(t, 60*time.Second, func() bool {
		return len(versions("A")) >= 5 && len(versions("C")) >= 2 &&
			len(jsonOf[[]deadLetter](t, cli(t, nil, env, "deadletters", "list", "--json"))) == 0
	}, "A and C not released")
	require.Equal(t, []int64{1, 2, 3, 4, 5}, versions("A"), "A's events applied in order, once each")
	require.Equal(t, []int64{2, 3}, versions("C"), "C's dead event dropped, the parked ones applied in order")
	r = cli(t, nil, env, "deadletters", "list")
	require.Equal(t, dddkitcli.ExitOK, r.code)
	require.Contains(t, r.stdout, "no dead letters")
	r = cli(t, nil, dbOnly, "doctor")
	requireCheck(t, r.stdout, "OK", "dead letters")
	r = cli(t, nil, env, "deadletters", "replay", handler, "A")
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	require.Contains(t, r.stderr, "no dead letter")
}
