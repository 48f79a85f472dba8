package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
)

// Bad configuration stops start-up with exit status 2 and a message that
// names the variable, before anything connects anywhere.
func TestConfigErrorsStopStartup(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string
	}{
		{"missing JWT_SECRET in production", map[string]string{
			"DATABASE_URL": "postgres://localhost/app", "KAFKA_BROKERS": "localhost:9092", "RESEND_API_KEY": "re_x",
			"EMAIL_FROM": "a@example.com", "FIELD_ENCRYPTION_KEY": "5f1c0e8a9b3d47e2a6c81f0d2b9e7a4c3d6f1b8e0a2c4e6f8a1b3c5d7e9f0a2b",
		}, "also needs JWT_SECRET"},
		{"short secret", map[string]string{"JWT_SECRET": "too short"}, "JWT_SECRET: is 9 bytes long, needs at least 32"},
		{"32 spaces", map[string]string{"JWT_SECRET": strings.Repeat(" ", 32)}, "JWT_SECRET: has too little entropy"},
		{"bad key", map[string]string{"FIELD_ENCRYPTION_KEY": "xyz"}, "FIELD_ENCRYPTION_KEY:"},
		{"weak key", map[string]string{"FIELD_ENCRYPTION_KEY": strings.Repeat("ab", 32)}, "FIELD_ENCRYPTION_KEY: fieldcrypt: key has too little entropy"},
		{"bad URL", map[string]string{
			"DATABASE_URL": "http://localhost/app", "KAFKA_BROKERS": "localhost:9092", "RESEND_API_KEY": "re_x",
			"EMAIL_FROM": "a@example.com", "FIELD_ENCRYPTION_KEY": "5f1c0e8a9b3d47e2a6c81f0d2b9e7a4c3d6f1b8e0a2c4e6f8a1b3c5d7e9f0a2b", "JWT_SECRET": "a production secret 0123456789abcdefghij",
		}, `DATABASE_URL: scheme "http" is not postgres://`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := realMain(nil, env(tc.vars), &stdout, &stderr)
			require.Equal(t, exitConfig, code)
			require.Contains(t, stderr.String(), "authnotify: cannot start, the configuration is invalid:")
			require.Contains(t, stderr.String(), tc.want)
			require.Contains(t, stderr.String(), "authnotify -h")
			require.Empty(t, stdout.String())
		})
	}
}

func TestHelpListsTheVariables(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, realMain([]string{"-h"}, env(nil), &stdout, &stderr))
	for _, v := range config.Vars() {
		require.Contains(t, stdout.String(), v.Name)
	}
	for _, name := range []string{"DATABASE_URL", "KAFKA_BROKERS", "RESEND_API_KEY", "EMAIL_FROM", "JWT_SECRET", "FIELD_ENCRYPTION_KEY", "HTTP_ADDR"} {
		require.Contains(t, stdout.String(), name)
	}

	require.Equal(t, exitConfig, realMain([]string{"-port=1"}, env(nil), &stdout, &stderr))
	require.Equal(t, exitConfig, realMain([]string{"serve"}, env(nil), &stdout, &stderr))
}

// With no HTTP_ADDR, embedded mode listens on the loopback interface only
// (its dev mailbox shows every code), and the banner says where it
// listens; production's banner says it listens on every interface.
func TestEmbeddedListensOnLoopbackAndTheBannerSaysSo(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil))
	require.NoError(t, err)
	host, port, err := net.SplitHostPort(cfg.HTTPAddr)
	require.NoError(t, err)
	require.Equal(t, "8080", port)
	cfg.HTTPAddr = net.JoinHostPort(host, "0") // the default host, on a free port

	var stdout syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, runtime{Stdout: &stdout, Logger: testLogger(), Listening: func(a net.Addr) { listening <- a }})
	}()
	var addr net.Addr
	select {
	case addr = <-listening:
	case err := <-done:
		cancel()
		t.Fatalf("the application did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("the application did not start within 60s")
	}
	cancel()
	require.NoError(t, <-done)

	ip := addr.(*net.TCPAddr).IP
	require.True(t, ip.IsLoopback(), "listens on %s", addr)
	require.Contains(t, stdout.String(), "EMBEDDED mode on http://"+addr.String()+", listening on "+addr.String()+" (this machine only; HTTP_ADDR changes it)")

	var out bytes.Buffer
	banner(&out, config.Config{Mode: config.Production}, &net.TCPAddr{IP: net.IPv6unspecified, Port: 8080})
	require.Equal(t, "authnotify is running in production mode (PostgreSQL, Kafka, River, Resend) on http://localhost:8080, listening on [::]:8080 (every network interface; HTTP_ADDR changes it).\n", out.String())
}
