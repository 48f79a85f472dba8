package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
)

// testFieldKey is a random key (openssl rand -hex 32).
const testFieldKey = "5f1c0e8a9b3d47e2a6c81f0d2b9e7a4c3d6f1b8e0a2c4e6f8a1b3c5d7e9f0a2b"

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// production returns a complete production environment with overrides;
// an override of "" unsets the variable.
func production(overrides map[string]string) map[string]string {
	vars := map[string]string{
		"DATABASE_URL":         "postgres://app:s3cret@db.internal:5432/app?sslmode=disable",
		"KAFKA_BROKERS":        "kafka-1:9092, kafka-2:9092",
		"RESEND_API_KEY":       "re_123",
		"EMAIL_FROM":           "authnotify <no-reply@example.com>",
		"JWT_SECRET":           "a production secret 0123456789abcdefghij",
		"FIELD_ENCRYPTION_KEY": testFieldKey,
	}
	for k, v := range overrides {
		if v == "" {
			delete(vars, k)
		} else {
			vars[k] = v
		}
	}
	return vars
}

func TestEmbeddedDefault(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(nil))
	require.NoError(t, err)
	require.Equal(t, config.Embedded, cfg.Mode)
	require.Equal(t, "127.0.0.1:8080", cfg.HTTPAddr, "embedded mode serves the dev mailbox: loopback only")
	require.Equal(t, []string{"JWT_SECRET", "FIELD_ENCRYPTION_KEY"}, cfg.Generated)
	require.Len(t, cfg.JWTKeys, 1)
	require.GreaterOrEqual(t, len(cfg.JWTKeys[0].Secret), config.MinJWTSecret)
	require.Len(t, cfg.FieldKeys[0].Secret, 32)

	// Secrets given in embedded mode are used, and checked.
	cfg, err = config.Load(env(map[string]string{"JWT_SECRET": "an embedded secret 0123456789abcdefghij", "HTTP_ADDR": "127.0.0.1:9000"}))
	require.NoError(t, err)
	require.Equal(t, []string{"FIELD_ENCRYPTION_KEY"}, cfg.Generated)
	require.Equal(t, "127.0.0.1:9000", cfg.HTTPAddr)
	require.Zero(t, cfg.MaxConcurrentHashes, "0: internal/hashlimit's default, the number of CPUs")

	cfg, err = config.Load(env(map[string]string{"MAX_CONCURRENT_HASHES": "3", "HASH_WAIT": "500ms"}))
	require.NoError(t, err)
	require.Equal(t, 3, cfg.MaxConcurrentHashes)
	require.Equal(t, 500*time.Millisecond, cfg.HashWait)
	require.Equal(t, config.DefaultUnverifiedAccountTTL, cfg.UnverifiedAccountTTL)
	cfg, err = config.Load(env(map[string]string{"UNVERIFIED_ACCOUNT_TTL": "90m"}))
	require.NoError(t, err)
	require.Equal(t, 90*time.Minute, cfg.UnverifiedAccountTTL)
	_, err = config.Load(env(map[string]string{"JWT_SECRET": "short"}))
	require.ErrorContains(t, err, "JWT_SECRET: is 5 bytes long, needs at least 32")
}

func TestProduction(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(production(nil)))
	require.NoError(t, err)
	require.Equal(t, config.Production, cfg.Mode)
	require.Equal(t, []string{"kafka-1:9092", "kafka-2:9092"}, cfg.KafkaBrokers)
	require.Empty(t, cfg.Generated)
	require.Len(t, cfg.FieldKeys[0].Secret, 32)
	require.Equal(t, ":8080", cfg.HTTPAddr, "production listens on every interface")
	require.Equal(t, int32(config.DefaultTopicPartitions), cfg.TopicPartitions)
	require.Zero(t, cfg.ReplicationFactor, "0: the brokers' default")

	cfg, err = config.Load(env(production(map[string]string{"HTTP_ADDR": "10.0.0.7:9000",
		"KAFKA_TOPIC_PARTITIONS": "12", "KAFKA_REPLICATION_FACTOR": "3"})))
	require.NoError(t, err)
	require.Equal(t, "10.0.0.7:9000", cfg.HTTPAddr, "HTTP_ADDR overrides")
	require.Equal(t, int32(12), cfg.TopicPartitions)
	require.Equal(t, int16(3), cfg.ReplicationFactor)
}

// JWT_SECRET is one plain secret or a list id:secret,...: the first key
// signs, all verify.
func TestJWTKeys(t *testing.T) {
	t.Parallel()
	plain := "a plain secret: 0123456789abcdefghij"
	cfg, err := config.Load(env(production(map[string]string{"JWT_SECRET": plain})))
	require.NoError(t, err)
	require.Equal(t, []config.JWTKey{{Secret: []byte(plain)}}, cfg.JWTKeys, "a colon after a non-ID is part of a plain secret")

	cfg, err = config.Load(env(production(map[string]string{"JWT_SECRET": "2026-11:new secret 0123456789abcdefghijkl, 2026-05:old secret 0123456789abcdefghijkl"})))
	require.NoError(t, err)
	require.Equal(t, []config.JWTKey{
		{ID: "2026-11", Secret: []byte("new secret 0123456789abcdefghijkl")},
		{ID: "2026-05", Secret: []byte("old secret 0123456789abcdefghijkl")},
	}, cfg.JWTKeys)
}

func TestStartupErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		vars map[string]string
		want []string
	}{
		{"missing JWT_SECRET in production", production(map[string]string{"JWT_SECRET": ""}),
			[]string{"production mode", "also needs JWT_SECRET"}},
		{"only DATABASE_URL", map[string]string{"DATABASE_URL": "postgres://localhost/app"},
			[]string{"also needs KAFKA_BROKERS, RESEND_API_KEY, EMAIL_FROM, JWT_SECRET, FIELD_ENCRYPTION_KEY", "unset all three to run embedded"}},
		{"short secret", production(map[string]string{"JWT_SECRET": "only-20-bytes-long!!"}),
			[]string{"JWT_SECRET: is 20 bytes long, needs at least 32"}},
		{"bad key", production(map[string]string{"FIELD_ENCRYPTION_KEY": "not-a-key"}),
			[]string{"FIELD_ENCRYPTION_KEY:"}},
		{"short key", production(map[string]string{"FIELD_ENCRYPTION_KEY": strings.Repeat("ab", 16)}),
			[]string{"FIELD_ENCRYPTION_KEY:"}},
		{"bad URL scheme", production(map[string]string{"DATABASE_URL": "mysql://app@db/app"}),
			[]string{`DATABASE_URL: scheme "mysql" is not postgres://`}},
		{"bad URL", production(map[string]string{"DATABASE_URL": "postgres://app:s3cret@db:notaport/app"}),
			[]string{"DATABASE_URL: is not a valid URL"}},
		{"bad connection string", production(map[string]string{"DATABASE_URL": "host=db port=notaport password=s3cret"}),
			[]string{"DATABASE_URL: cannot be parsed"}},
		{"bad broker", production(map[string]string{"KAFKA_BROKERS": "kafka-1"}),
			[]string{`KAFKA_BROKERS: "kafka-1" is not host:port`}},
		{"bad sender", production(map[string]string{"EMAIL_FROM": "nobody"}),
			[]string{`EMAIL_FROM: "nobody" is not an email address`}},
		{"bad HTTP_ADDR", map[string]string{"HTTP_ADDR": "8080"},
			[]string{`HTTP_ADDR: "8080" is not host:port`}},
		{"bad Resend URL", production(map[string]string{"RESEND_BASE_URL": "api.resend.com"}),
			[]string{`RESEND_BASE_URL: "api.resend.com" is not an http(s) URL`}},
		{"bad partitions", production(map[string]string{"KAFKA_TOPIC_PARTITIONS": "0"}),
			[]string{`KAFKA_TOPIC_PARTITIONS: "0" is not a whole number of at least 1`}},
		{"bad replication factor", production(map[string]string{"KAFKA_REPLICATION_FACTOR": "three"}),
			[]string{`KAFKA_REPLICATION_FACTOR: "three" is not a whole number of at least 1`}},
		{"bad hash limit", map[string]string{"MAX_CONCURRENT_HASHES": "0"},
			[]string{`MAX_CONCURRENT_HASHES: "0" is not a whole number of at least 1`}},
		{"bad hash wait", map[string]string{"HASH_WAIT": "2"},
			[]string{`HASH_WAIT: "2" is not a positive duration`}},
		{"bad unverified TTL", map[string]string{"UNVERIFIED_ACCOUNT_TTL": "-1h"},
			[]string{`UNVERIFIED_ACCOUNT_TTL: "-1h" is not a positive duration`}},
		{"32 spaces", production(map[string]string{"JWT_SECRET": strings.Repeat(" ", 32)}),
			[]string{"JWT_SECRET: has too little entropy (1 distinct characters, needs at least 8"}},
		{"repeated character", map[string]string{"JWT_SECRET": strings.Repeat("s", 64)},
			[]string{"JWT_SECRET: has too little entropy"}},
		{"weak key in a list", production(map[string]string{"JWT_SECRET": "k2:a production secret 0123456789abcdefghij,k1:" + strings.Repeat("ab", 20)}),
			[]string{`JWT_SECRET: key "k1" has too little entropy`}},
		{"short key in a list", production(map[string]string{"JWT_SECRET": "k2:a production secret 0123456789abcdefghij,k1:short"}),
			[]string{`JWT_SECRET: key "k1" is 5 bytes long`}},
		{"list entry without ID", production(map[string]string{"JWT_SECRET": "k2:a production secret 0123456789abcdefghij,a production secret 0123456789abcdefghij"}),
			[]string{"JWT_SECRET: key 2 is not id:secret"}},
		{"duplicate key ID", production(map[string]string{"JWT_SECRET": "k1:a production secret 0123456789abcdefghij,k1:another secret 0123456789abcdefghij"}),
			[]string{`JWT_SECRET: key ID "k1" appears twice`}},
		{"every problem at once", production(map[string]string{"JWT_SECRET": "short", "FIELD_ENCRYPTION_KEY": "bad", "KAFKA_BROKERS": "x"}),
			[]string{"JWT_SECRET", "FIELD_ENCRYPTION_KEY", "KAFKA_BROKERS"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(tc.vars))
			require.Error(t, err)
			for _, want := range tc.want {
				require.ErrorContains(t, err, want)
			}
			require.NotContains(t, err.Error(), "s3cret", "no password in messages")
		})
	}
}

func TestFieldKeys(t *testing.T) {
	t.Parallel()
	other := "9d2e4f6a8c0b1d3f5e7a9c2b4d6f8e0a1c3e5b7d9f2a4c6e8b0d1f3a5c7e9b2d"
	cfg, err := config.Load(env(production(map[string]string{"FIELD_ENCRYPTION_KEY": "new:" + other + ",old:" + testFieldKey})))
	require.NoError(t, err)
	require.Len(t, cfg.FieldKeys, 2)
	require.Equal(t, "new", cfg.FieldKeys[0].ID, "the first key seals")
	require.Equal(t, "old", cfg.FieldKeys[1].ID)

	for _, weak := range []string{strings.Repeat("ab", 32), "new:" + other + ",old:" + strings.Repeat("0f", 32)} {
		_, err = config.Load(env(production(map[string]string{"FIELD_ENCRYPTION_KEY": weak})))
		require.ErrorContains(t, err, "FIELD_ENCRYPTION_KEY:")
		require.ErrorContains(t, err, "too little entropy")
	}
	_, err = config.Load(env(production(map[string]string{"FIELD_ENCRYPTION_KEY": "a:" + other + ",a:" + testFieldKey})))
	require.ErrorContains(t, err, "appears twice")
}
