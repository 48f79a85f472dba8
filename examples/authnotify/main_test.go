package main

import (
	"bytes"
	"strings"
	"testing"

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
			"EMAIL_FROM": "a@example.com", "FIELD_ENCRYPTION_KEY": strings.Repeat("ab", 32),
		}, "also needs JWT_SECRET"},
		{"short secret", map[string]string{"JWT_SECRET": "too short"}, "JWT_SECRET: is 9 bytes long, needs at least 32"},
		{"bad key", map[string]string{"FIELD_ENCRYPTION_KEY": "xyz"}, "FIELD_ENCRYPTION_KEY:"},
		{"bad URL", map[string]string{
			"DATABASE_URL": "http://localhost/app", "KAFKA_BROKERS": "localhost:9092", "RESEND_API_KEY": "re_x",
			"EMAIL_FROM": "a@example.com", "FIELD_ENCRYPTION_KEY": strings.Repeat("ab", 32), "JWT_SECRET": strings.Repeat("s", 32),
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
