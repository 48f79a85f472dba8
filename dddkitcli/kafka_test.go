package dddkitcli_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkitcli"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/outbox"
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
	require.Equal(t, []string{"schema", "outbox failed", "relay leader", "relay behind", "kafka", "topic " + topic, "consumers"}, names)

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

// A handler fails an event for good; deadletters list and show find it
// with where it came from and why, and replay puts it back on the
// original topic with its key, value and headers, where the handler,
// fixed, takes it. replay --all replays only what it has not replayed.
func TestDeadLetters(t *testing.T) {
	t.Parallel()
	topic, dlt := kafkatest.Topic(t, 3), kafkatest.Topic(t, 1)
	env := map[string]string{dddkitcli.EnvKafkaBrokers: strings.Join(kafkatest.Brokers(t), ",")}
	client := newKafkaClient(t)
	reg := registry(t, topic)
	router, err := eventbus.NewRouter(client, reg, &eventbus.RouterConfig{DeadLetterTopic: dlt,
		Retry: retry.Policy{MaxAttempts: 1}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	var fixed = make(chan struct{})
	handled := make(chan string, 10)
	require.NoError(t, eventbus.Handle(router, "pricing", func(_ context.Context, _ itemAdded, env aggregate.Envelope) error {
		select {
		case <-fixed:
			handled <- env.ID
			return nil
		default:
			return errors.New("price list missing")
		}
	}))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- router.Run(ctx) }()
	defer func() {
		stop()
		<-done
	}()
	<-router.Running()
	pub, err := eventbus.NewPublisher(client.Publisher(), reg)
	require.NoError(t, err)
	poison := cartEvent("cart-7", 3)
	poison.Metadata.CorrelationID = "req-7"
	require.NoError(t, pub.Publish(ctx, poison))

	type deadLetter struct {
		ID, Key, Handler, Reason string
		Original                 string `json:"original_topic"`
		EventID                  string `json:"event_id"`
		Replayed                 bool
		Headers                  map[string]string
		Value                    string
	}
	var dls []deadLetter
	testinfra.Eventually(t, 60*time.Second, func() bool {
		r := cli(t, nil, env, "deadletters", "list", "--topic", dlt, "--json")
		dls = jsonOf[[]deadLetter](t, r)
		return len(dls) == 1
	}, "no dead letter")
	d := dls[0]
	require.Equal(t, dlt+"/0/0", d.ID)
	require.Equal(t, topic, d.Original)
	require.Equal(t, "pricing", d.Handler)
	require.Contains(t, d.Reason, "price list missing")
	require.Equal(t, poison.ID, d.EventID)
	require.Equal(t, "cart-7", d.Key)
	require.False(t, d.Replayed)

	shown := jsonOf[deadLetter](t, cli(t, nil, env, "deadletters", "show", d.ID, "--topic", dlt, "--json"))
	require.Equal(t, "req-7", shown.Headers[eventbus.HeaderCorrelationID])
	require.JSONEq(t, `{"sku":"cart-7"}`, shown.Value)
	r := cli(t, nil, env, "deadletters", "show", dlt+"/0/5")
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	require.Contains(t, r.stderr, "no such record")

	original := kafkatest.ReadAll(t, kafkatest.Brokers(t), topic)
	require.Len(t, original, 1)
	close(fixed)
	r = cli(t, nil, env, "deadletters", "replay", d.ID)
	require.Equal(t, dddkitcli.ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "1 dead letters replayed")
	select {
	case id := <-handled:
		require.Equal(t, poison.ID, id)
	case <-time.After(60 * time.Second):
		t.Fatal("the replayed event was not handled")
	}
	after := kafkatest.ReadAll(t, kafkatest.Brokers(t), topic)
	require.Len(t, after, 2)
	require.Equal(t, original[0].Partition, after[1].Partition, "the key's partition")
	require.Equal(t, original[0].Key, after[1].Key)
	require.Equal(t, original[0].Value, after[1].Value)
	require.Equal(t, original[0].Headers, after[1].Headers, "the event's headers, without the dead-letter ones")

	// --all replays what no --all has replayed (the ID replay did not
	// mark it), once.
	r = cli(t, nil, env, "deadletters", "replay", "--all", "--topic", dlt)
	require.Equal(t, dddkitcli.ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "1 dead letters replayed")
	<-handled
	r = cli(t, nil, env, "deadletters", "replay", "--all", "--topic", dlt)
	require.Contains(t, r.stdout, "0 dead letters replayed")
	dls = jsonOf[[]deadLetter](t, cli(t, nil, env, "deadletters", "list", "--topic", dlt, "--json"))
	require.Len(t, dls, 1)
	require.True(t, dls[0].Replayed)
}
