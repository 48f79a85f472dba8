package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// The committed catalogue is what `authnotify catalog` prints today: this
// test fails when an event changes and docs/ was not regenerated with
//
//	go run ./examples/authnotify catalog > examples/authnotify/docs/events.json
//	go run ./examples/authnotify catalog -markdown > examples/authnotify/docs/events.md
func TestCommittedCatalogIsCurrent(t *testing.T) {
	t.Parallel()
	for file, args := range map[string][]string{
		"docs/events.json": {"catalog"},
		"docs/events.md":   {"catalog", "-markdown"},
	} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, exitOK, realMain(args, env(nil), &stdout, &stderr), stderr.String())
		committed, err := os.ReadFile(file)
		require.NoError(t, err)
		require.Equal(t, string(committed), stdout.String(),
			"%s is stale: regenerate it with go run ./examples/authnotify %v > examples/authnotify/%s", file, args, file)
	}
}

func TestCatalogArguments(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitConfig, realMain([]string{"catalog", "extra"}, env(nil), &stdout, &stderr))
	require.Contains(t, stderr.String(), "unexpected arguments")
	require.Equal(t, exitConfig, realMain([]string{"catalog", "-yaml"}, env(nil), &stdout, &stderr))
	require.Empty(t, stdout.String())
}
