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

// RelayLeaders finds the session holding the relay's leader lock while a
// relay runs, and none before it starts or after it stops; the lock of
// another outbox table does not count.
func TestOutboxRelayLeaders(t *testing.T) {
	t.Parallel()
	b := newOutboxBundle(t, nil)
	other := newOutboxBundle(t, nil)
	ctx := context.Background()

	leaders, err := b.ob.RelayLeaders(ctx)
	require.NoError(t, err)
	require.Empty(t, leaders, "no relay runs yet")

	relay, err := outbox.NewRelay(b.ob, &outboxtest.Recorder{}, b.reg, nil)
	require.NoError(t, err)
	stop := startRelay(t, relay)
	testinfra.Eventually(t, 30*time.Second, relay.IsLeader, "the relay never led")
	leaders, err = b.ob.RelayLeaders(ctx)
	require.NoError(t, err)
	require.Len(t, leaders, 1)
	require.NotZero(t, leaders[0].PID)
	require.False(t, leaders[0].Since.IsZero())
	otherLeaders, err := other.ob.RelayLeaders(ctx)
	require.NoError(t, err)
	require.Empty(t, otherLeaders, "another outbox table has its own lock")

	stop()
	testinfra.Eventually(t, 30*time.Second, func() bool {
		l, err := b.ob.RelayLeaders(ctx)
		return err == nil && len(l) == 0
	}, "the lock outlived the relay")
}
