package dddkit_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The core packages import neither a database driver nor a Kafka client:
// those live in the adapter packages postgres and kafka. This test keeps
// it that way.
func TestCorePackagesDependOnNoAdapter(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatalf("this test runs `go list`: %v", err)
	}
	forbidden := []string{
		"github.com/jackc/pgx",
		"github.com/IBM/sarama",
		"github.com/ThreeDotsLabs/watermill-kafka",
		"github.com/ThreeDotsLabs/watermill-sql",
		"github.com/dddkit/dddkit/postgres",
		"github.com/dddkit/dddkit/kafka",
		"go.opentelemetry.io/otel/sdk", // the library uses the OpenTelemetry API only
	}
	core := []string{
		"aggregate", "valueobject", "cqrs", "retry",
		"repository", "repository/repositorytest",
		"outbox", "outbox/outboxtest",
		"eventbus", "eventbus/eventbustest",
		"deadline", "process", "process/processtest",
		"projection", "projection/projectiontest",
		"dddkittest",
	}
	// The domain layer is standard library only (valueobject may hash
	// passwords with x/crypto); cqrs traces its dispatches with the
	// OpenTelemetry API, and records its metrics with it (and what that API
	// imports).
	otelAPI := []string{"go.opentelemetry.io", "github.com/go-logr", "github.com/cespare/xxhash"}
	stdOnly := map[string][]string{
		"aggregate":   nil,
		"cqrs":        otelAPI,
		"deadline":    nil,
		"retry":       nil,
		"valueobject": {"golang.org/x/crypto", "golang.org/x/sys"},
	}
	for _, pkg := range core {
		deps := goListDeps(t, "./"+pkg)
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s imports %s (adapters belong in postgres or kafka)", pkg, d)
				}
			}
		}
		allowed, ok := stdOnly[pkg]
		if !ok {
			continue
		}
		for _, d := range deps {
			if isStd(d) || strings.HasPrefix(d, "github.com/dddkit/dddkit/") {
				continue
			}
			if !hasPrefix(d, allowed) {
				t.Errorf("%s imports %s; it may use only the standard library", pkg, d)
			}
		}
	}
}

func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

// isStd reports whether an import path belongs to the standard library
// (its first element has no dot).
func isStd(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func hasPrefix(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}
