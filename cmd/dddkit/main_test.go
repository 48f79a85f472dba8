package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/dddkit/dddkit/postgres"
)

// The binary is dddkitcli.Command without service code (whose tests
// drive every command against real services): usage, a command that
// needs no service, and the refused rebuild.
func TestRun(t *testing.T) {
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	if code := run(ctx, nil, &stdout, &stderr); code != 2 || !strings.Contains(stdout.String(), "dddkit COMMAND") {
		t.Fatalf("no arguments: exit %d, %q", code, stdout.String())
	}
	stdout.Reset()
	latest := postgres.LatestVersion()
	if code := run(ctx, []string{"migrate", "sql", "--from", fmt.Sprint(latest - 1)}, &stdout, &stderr); code != 0 {
		t.Fatalf("migrate sql: exit %d: %s", code, stderr.String())
	}
	if want := fmt.Sprintf("-- dddkit schema version %d:", latest); !strings.HasPrefix(stdout.String(), want) {
		t.Fatalf("migrate sql printed %q, want it to start with %q", stdout.String(), want)
	}
	stderr.Reset()
	if code := run(ctx, []string{"projections", "rebuild"}, &stdout, &stderr); code != 2 {
		t.Fatalf("projections rebuild without a name: exit %d", code)
	}
}
