package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/outbox/outboxtest"
)

// Leaders finds the session holding the relay's shard locks while a relay
// runs, with where it runs, and none before it starts or after it stops;
// the locks of another outbox table do not count.
func TestOutboxLeadersSessionInfo(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	other := newOutboxBundle(t, nil)
	ctx := context.Background()

	leaders, err := b.ob.Leaders(ctx)
	require.NoError(t, err)
	require.Empty(t, leaders, "no relay runs yet")

	relay, err := outbox.NewRelay(b.ob, &outboxtest.Recorder{}, b.reg, nil)
	require.NoError(t, err)
	stop := startRelay(t, relay)
	testinfra.Eventually(t, 30*time.Second, relay.IsLeader, "the relay never led")
	leaders, err = b.ob.Leaders(ctx)
	require.NoError(t, err)
	require.Len(t, leaders, 1)
	require.NotZero(t, leaders[0].PID)
	require.False(t, leaders[0].Since.IsZero())
	require.Len(t, leaders[0].Shards, leaders[0].ShardCount, "one relay alone leads every shard")
	otherLeaders, err := other.ob.Leaders(ctx)
	require.NoError(t, err)
	require.Empty(t, otherLeaders, "another outbox table has its own lock")

	stop()
	testinfra.Eventually(t, 30*time.Second, func() bool {
		l, err := b.ob.Leaders(ctx)
		return err == nil && len(l) == 0
	}, "the lock outlived the relay")
}
