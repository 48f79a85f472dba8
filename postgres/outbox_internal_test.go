package postgres

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestChannelNameFitsIdentifierLimit(t *testing.T) {
	t.Parallel()
	require.Equal(t, "public.dddkit_outbox", channelName("public", "dddkit_outbox"))
	long := channelName(strings.Repeat("s", 63), strings.Repeat("t", 48))
	require.LessOrEqual(t, len(long), 63)
	require.NotEqual(t, long, channelName(strings.Repeat("s", 63), strings.Repeat("t", 47)+"u"), "names that share a prefix get different channels")
}

func TestLockKeysDifferByPurposeAndTable(t *testing.T) {
	t.Parallel()
	relay := lockKey("outbox/relay", "a", "b")
	require.Equal(t, relay, lockKey("outbox/relay", "a", "b"), "stable")
	require.NotEqual(t, relay, lockKey("migrate", "a", "b"))
	require.NotEqual(t, relay, lockKey("outbox/relay", "a", "c"))
	require.NotEqual(t, relay, lockKey("outbox/relay", "x", "b"))
}

func TestTruncateKeepsValidText(t *testing.T) {
	t.Parallel()
	require.Equal(t, "abc", truncate("a\x00bc", 10))
	require.Equal(t, "a\uFFFDb", truncate("a\xffb", 10))
	require.Equal(t, "ab", truncate("abé", 3), "no half rune")
	require.Equal(t, "abé", truncate("abé", 4))
}
