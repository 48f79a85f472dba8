package outbox

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/retry"
)

func TestChannelNameFitsIdentifierLimit(t *testing.T) {
	t.Parallel()
	require.Equal(t, "public.dddkit_outbox", channelName("public", "dddkit_outbox"))
	long := channelName(strings.Repeat("s", 63), strings.Repeat("t", 48))
	require.LessOrEqual(t, len(long), 63)
	require.NotEqual(t, long, channelName(strings.Repeat("s", 63), strings.Repeat("t", 47)+"u"))
	require.NotEqual(t, lockKey("relay", newNames("a", "b")), lockKey("migrate", newNames("a", "b")))
}

func TestRelayConfigRetryDefaults(t *testing.T) {
	t.Parallel()
	c, _, err := (*RelayConfig)(nil).withDefaults()
	require.NoError(t, err)
	require.Equal(t, retry.Policy{MaxAttempts: 10, BaseDelay: time.Second, MaxDelay: time.Minute}, c.Retry)
	c, _, err = (&RelayConfig{Retry: retry.Policy{MaxAttempts: 3}}).withDefaults()
	require.NoError(t, err)
	require.Equal(t, retry.Policy{MaxAttempts: 3, BaseDelay: time.Second, MaxDelay: time.Minute}, c.Retry)
}

func TestAttemptForFollowsTheRetryPolicy(t *testing.T) {
	t.Parallel()
	var failures []AttemptFailure
	cfg, _, err := (&RelayConfig{
		Retry: retry.Policy{MaxAttempts: 3, BaseDelay: 100 * time.Millisecond, MaxDelay: 150 * time.Millisecond},
		Hooks: Hooks{OnAttemptFailed: func(f AttemptFailure) { failures = append(failures, f) }},
	}).withDefaults()
	require.NoError(t, err)
	p := &processor{cfg: &cfg}
	boom := errors.New("boom")

	a := p.attemptFor(item{seq: 7}, boom)
	require.Equal(t, 1, a.attempts)
	require.False(t, a.final)
	require.GreaterOrEqual(t, a.delay, 50*time.Millisecond)
	require.LessOrEqual(t, a.delay, 100*time.Millisecond)

	a = p.attemptFor(item{seq: 7, attempts: 1}, boom)
	require.False(t, a.final)
	require.GreaterOrEqual(t, a.delay, 75*time.Millisecond, "the bound doubles to 200ms, capped at 150ms")
	require.LessOrEqual(t, a.delay, 150*time.Millisecond)

	a = p.attemptFor(item{seq: 7, attempts: 2}, boom)
	require.Equal(t, 3, a.attempts)
	require.True(t, a.final, "the third failure is final")
	require.Zero(t, a.delay)
	require.Len(t, failures, 3)
	require.True(t, failures[2].Final)
}

func TestGracefulContext(t *testing.T) {
	t.Parallel()
	parent, cancel := context.WithCancel(context.Background())
	ctx, stop := graceful(parent, 50*time.Millisecond)
	defer stop()
	cancel()
	require.NoError(t, ctx.Err(), "still alive right after the parent ended")
	select {
	case <-ctx.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("not cancelled after the grace period")
	}

	ctx2, stop2 := graceful(context.Background(), time.Hour)
	stop2()
	require.Error(t, ctx2.Err(), "stop cancels")
}

func TestTruncateKeepsValidText(t *testing.T) {
	t.Parallel()
	require.Equal(t, "abc", truncate("a\x00bc", 10))
	require.Equal(t, "a\uFFFDb", truncate("a\xffb", 10))
	require.Equal(t, "ab", truncate("abé", 3), "no half rune")
	require.Equal(t, "abé", truncate("abé", 4))
}
