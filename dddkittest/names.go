package dddkittest

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

// UniqueSuffix returns a short random lower-case hex string, for names
// that must not collide between tests or runs.
func UniqueSuffix() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9_]+`)

// UniqueName returns a unique identifier derived from the test's name:
// lower case, [a-z0-9_], at most 40 characters, safe as a PostgreSQL
// schema name or (with "_" replaced by "-") a Kafka topic name.
func UniqueName(t testing.TB) string {
	base := unsafeChars.ReplaceAllString(strings.ToLower(t.Name()), "_")
	if len(base) > 28 {
		base = base[len(base)-28:]
	}
	return strings.Trim("t_"+base, "_") + "_" + UniqueSuffix()
}
