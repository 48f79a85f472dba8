package outbox

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestChannelNameFitsIdentifierLimit(t *testing.T) {
	t.Parallel()
	require.Equal(t, "public.dddkit_outbox", channelName("public", "dddkit_outbox"))
	long := channelName(strings.Repeat("s", 63), strings.Repeat("t", 48))
	require.LessOrEqual(t, len(long), 63)
	require.NotEqual(t, long, channelName(strings.Repeat("s", 63), strings.Repeat("t", 47)+"u"))
	require.NotEqual(t, lockKey("relay", newNames("a", "b")), lockKey("migrate", newNames("a", "b")))
}

func TestDefaultRetryDelay(t *testing.T) {
	t.Parallel()
	var got []time.Duration
	for n := range 10 {
		got = append(got, DefaultRetryDelay(n))
	}
	s := time.Second
	require.Equal(t, []time.Duration{s, s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, time.Minute, time.Minute, time.Minute}, got)
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
