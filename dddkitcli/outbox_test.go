package dddkitcli_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkitcli"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
	"github.com/dddkit/dddkit/retry"
)

type recordJSON struct {
	Seq           int64
	Status        string
	EventName     string `json:"event_name"`
	AggregateID   string `json:"aggregate_id"`
	Attempts      int
	LastError     string `json:"last_error"`
	DiscardedBy   string `json:"discarded_by"`
	DiscardReason string `json:"discard_reason"`
	Headers       map[string]string
	Payload       map[string]any
}

// An operator finds the failed events, looks at one, retries one and
// skips another (saying who and why); the relay then publishes the
// retried one and the events the failed ones held back.
func TestOutboxCommands(t *testing.T) {
	t.Parallel()
	db := newDatabase(t, "carts")
	ctx := context.Background()
	rec := &outboxtest.Recorder{}
	relay, err := outbox.NewRelay(db.ob, rec, db.reg, &outbox.RelayConfig{Retry: retry.Policy{MaxAttempts: 1}})
	require.NoError(t, err)
	rec.Refuse(func(_ string, m *message.Message) error {
		if id := m.Metadata.Get(eventbus.HeaderAggregateID); id != "ok" {
			return errors.New("broker says no to " + id)
		}
		return nil
	})
	a1 := cartEvent("a", 1)
	a1.Metadata.CorrelationID = "req-42"
	require.NoError(t, db.ob.Write(ctx, cartEvent("ok", 1), a1, cartEvent("a", 2), cartEvent("b", 1)))
	_, err = relay.Flush(ctx)
	require.NoError(t, err)
	rec.Refuse(nil)

	type stats struct {
		Pending, Failed int64
		Leaders         []any `json:"relay_leaders"`
	}
	st := jsonOf[stats](t, cli(t, nil, db.env, "outbox", "stats", "--json"))
	require.Equal(t, stats{Pending: 1, Failed: 2, Leaders: []any{}}, st, "a v2 waits behind a v1")
	text := cli(t, nil, db.env, "outbox", "stats")
	require.Contains(t, text.stdout, "relay leader")
	require.Contains(t, text.stdout, "none")

	failed := jsonOf[[]recordJSON](t, cli(t, nil, db.env, "outbox", "list", "--status", "failed", "--json"))
	require.Len(t, failed, 2)
	require.Equal(t, []string{"a", "b"}, []string{failed[0].AggregateID, failed[1].AggregateID})
	require.Equal(t, "broker says no to a", failed[0].LastError)
	require.Equal(t, 1, failed[0].Attempts)
	list := cli(t, nil, db.env, "outbox", "list") // failed is the default
	require.Contains(t, list.stdout, fmt.Sprint(failed[1].Seq))
	require.Contains(t, list.stdout, "broker says no to b")

	shown := jsonOf[recordJSON](t, cli(t, nil, db.env, "outbox", "show", fmt.Sprint(failed[0].Seq), "--json"))
	require.Equal(t, "failed", shown.Status)
	require.Equal(t, "cart.item_added", shown.EventName)
	require.Equal(t, map[string]any{"sku": "a"}, shown.Payload)
	require.Equal(t, "req-42", shown.Headers[eventbus.HeaderCorrelationID], "the event's metadata headers")
	r := cli(t, nil, db.env, "outbox", "show", "999999")
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	require.Contains(t, r.stderr, "no such row")

	// Skip b (who and why are kept), retry a.
	r = cli(t, nil, db.env, "outbox", "skip", fmt.Sprint(failed[1].Seq), "--reason", "sent by hand")
	require.Equal(t, dddkitcli.ExitUsage, r.code, "no --by and no USER")
	db.env["USER"] = "alice"
	r = cli(t, nil, db.env, "outbox", "skip", fmt.Sprint(failed[1].Seq), "--reason", "sent by hand")
	require.Equal(t, dddkitcli.ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, "1 failed rows discarded by alice")
	discarded := jsonOf[[]recordJSON](t, cli(t, nil, db.env, "outbox", "list", "--status", "discarded", "--json"))
	require.Len(t, discarded, 1)
	require.Equal(t, "alice", discarded[0].DiscardedBy)
	require.Equal(t, "sent by hand", discarded[0].DiscardReason)

	r = cli(t, nil, db.env, "outbox", "retry", fmt.Sprint(failed[0].Seq), fmt.Sprint(failed[1].Seq), "--json")
	type changed struct{ Changed int64 }
	require.Equal(t, changed{Changed: 1}, jsonOf[changed](t, r), "the discarded row is not retried")
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n, "a v1 retried, then a v2")
	st = jsonOf[stats](t, cli(t, nil, db.env, "outbox", "stats", "--json"))
	require.Equal(t, stats{Leaders: []any{}}, st)
	r = cli(t, nil, db.env, "outbox", "retry", "--all-failed")
	require.Contains(t, r.stdout, "0 failed rows back to pending")

	var sent []string
	for _, m := range rec.Messages() {
		sent = append(sent, m.Metadata.Get(eventbus.HeaderAggregateID)+" v"+m.Metadata.Get(eventbus.HeaderAggregateVersion))
	}
	require.Equal(t, []string{"ok v1", "a v1", "a v2"}, sent)
}
