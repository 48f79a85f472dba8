// Package config reads the example's configuration from the environment
// and checks it before anything starts.
//
// # Modes
//
// With none of DATABASE_URL, KAFKA_BROKERS and RESEND_API_KEY set the
// system runs embedded: in-memory stores, in-process transport and job
// queue, the dev mailbox instead of an email provider. JWT_SECRET and
// FIELD_ENCRYPTION_KEY are generated when unset (with a warning: tokens
// and codes do not survive a restart, which is of no consequence when
// nothing else does either).
//
// Setting any of the three switches to production mode, which then needs
// all of them and every secret: DATABASE_URL, KAFKA_BROKERS,
// RESEND_API_KEY, EMAIL_FROM, JWT_SECRET and FIELD_ENCRYPTION_KEY. There
// are no half-way modes (PostgreSQL with the in-process transport, say):
// one switch that was forgotten would otherwise quietly lose emails or
// data, and the two modes are what the tests cover.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
)

// MinJWTSecret is the least length of each JWT_SECRET key in bytes (HS256
// wants a key at least as long as its hash).
const MinJWTSecret = 32

// minJWTDistinct is the least number of different characters in a
// JWT_SECRET key: 32 spaces are long enough, but no secret.
const minJWTDistinct = 8

// JWTKey is one key of JWT_SECRET. ID is "" for a single plain secret.
type JWTKey struct {
	ID     string
	Secret []byte
}

var jwtKeyID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// parseJWTKeys reads JWT_SECRET: either one plain secret, or a
// comma-separated list of id:secret whose first key signs. A value with no
// comma whose text before the first colon is not an ID is a plain secret.
func parseJWTKeys(s string) ([]JWTKey, []string) {
	id, _, hasColon := strings.Cut(s, ":")
	if !strings.Contains(s, ",") && (!hasColon || !jwtKeyID.MatchString(id)) {
		return []JWTKey{{Secret: []byte(s)}}, checkJWTSecret("", []byte(s))
	}
	var keys []JWTKey
	var problems []string
	seen := map[string]bool{}
	for entry := range strings.SplitSeq(s, ",") {
		id, secret, ok := strings.Cut(strings.TrimSpace(entry), ":")
		if !ok || !jwtKeyID.MatchString(id) {
			problems = append(problems, fmt.Sprintf("key %d is not id:secret (an ID is 1-64 of A-Z a-z 0-9 . _ -)", len(keys)+1))
			continue
		}
		if seen[id] {
			problems = append(problems, fmt.Sprintf("key ID %q appears twice", id))
		}
		seen[id] = true
		problems = append(problems, checkJWTSecret(id, []byte(secret))...)
		keys = append(keys, JWTKey{ID: id, Secret: []byte(secret)})
	}
	return keys, problems
}

func checkJWTSecret(id string, secret []byte) []string {
	name := ""
	if id != "" {
		name = "key " + fmt.Sprintf("%q", id) + " "
	}
	if len(secret) < MinJWTSecret {
		return []string{fmt.Sprintf("%sis %d bytes long, needs at least %d (e.g. openssl rand -base64 48)", name, len(secret), MinJWTSecret)}
	}
	distinct := map[byte]bool{}
	for _, b := range secret {
		distinct[b] = true
	}
	if len(distinct) < minJWTDistinct {
		return []string{fmt.Sprintf("%shas too little entropy (%d distinct characters, needs at least %d; e.g. openssl rand -base64 48)", name, len(distinct), minJWTDistinct)}
	}
	return nil
}

// MinAdminPassword is the least length of ADMIN_PASSWORD in bytes.
const MinAdminPassword = 16

// Where the HTTP server listens unless HTTP_ADDR says otherwise. Embedded
// mode serves the dev mailbox, which shows every code it "sends", so it
// listens on the loopback interface only; production listens on every
// interface, as a container or a VM behind a load balancer needs.
const (
	DefaultEmbeddedHTTPAddr   = "127.0.0.1:8080"
	DefaultProductionHTTPAddr = ":8080"
)

// DefaultTopicPartitions is the partition count of the Kafka topics
// production mode creates unless KAFKA_TOPIC_PARTITIONS says otherwise.
const DefaultTopicPartitions = 6

// Mode is how the system runs.
type Mode int

const (
	// Embedded needs no services: everything in memory, in one process.
	Embedded Mode = iota
	// Production uses PostgreSQL, Kafka, River and Resend.
	Production
)

func (m Mode) String() string {
	if m == Production {
		return "production"
	}
	return "embedded"
}

// Var describes one environment variable.
type Var struct {
	Name string
	Help string
}

// Vars lists the environment variables the system reads, for -h.
func Vars() []Var {
	return []Var{
		{"HTTP_ADDR", "address the HTTP server listens on (default " + DefaultEmbeddedHTTPAddr + " embedded, " + DefaultProductionHTTPAddr + " in production)"},
		{"DATABASE_URL", "PostgreSQL URL, e.g. postgres://user:pass@localhost:5432/app (production)"},
		{"KAFKA_BROKERS", "comma-separated Kafka bootstrap brokers, host:port (production)"},
		{"KAFKA_TOPIC_PARTITIONS", fmt.Sprintf("partitions of the Kafka topics created at start-up (optional, production; default %d)", DefaultTopicPartitions)},
		{"KAFKA_REPLICATION_FACTOR", "replicas of each partition of the Kafka topics created at start-up (optional, production; default the brokers' default.replication.factor)"},
		{"RESEND_API_KEY", "Resend API key; emails are sent through Resend (production)"},
		{"EMAIL_FROM", "sender of every email, e.g. 'authnotify <no-reply@example.com>' (production)"},
		{"JWT_SECRET", fmt.Sprintf("HS256 key of the access tokens, at least %d random bytes, or a list id1:key1,id2:key2 whose first key signs and all verify (production; generated when embedded)", MinJWTSecret)},
		{"FIELD_ENCRYPTION_KEY", "AES-256 key sealing the codes in events: 64 hex digits or base64 of 32 bytes, or ID:KEY,ID:KEY,... to rotate (the first seals, all open) (production; generated when embedded)"},
		{"RESEND_BASE_URL", "Resend API address (optional; default https://api.resend.com/)"},
		{"MAX_CONCURRENT_HASHES", "password hashes (argon2id, 19 MiB each) that may run at once (optional; default the number of CPUs)"},
		{"HASH_WAIT", "how long a request waits for a hash slot before answering 503, e.g. 2s (optional; default 2s)"},
		{"UNVERIFIED_ACCOUNT_TTL", "how long an account may stay unverified before it is removed and its address freed, e.g. 24h (optional; default 24h)"},
		{"ADMIN_PASSWORD", fmt.Sprintf("password of user %q for River's job UI at /admin/jobs (optional, production; at least %d bytes; unset: no UI)", "admin", MinAdminPassword)},
	}
}

// DefaultUnverifiedAccountTTL is how long an account may stay unverified
// unless UNVERIFIED_ACCOUNT_TTL says otherwise.
const DefaultUnverifiedAccountTTL = 24 * time.Hour

// Config is the checked configuration.
type Config struct {
	Mode     Mode
	HTTPAddr string

	DatabaseURL  string
	KafkaBrokers []string
	// TopicPartitions and ReplicationFactor are the partitions and the
	// replication factor of the Kafka topics created at start-up; a
	// ReplicationFactor of 0 leaves it to the brokers.
	TopicPartitions   int32
	ReplicationFactor int16
	ResendAPIKey      string
	ResendBaseURL     string
	EmailFrom         string
	AdminPassword     string // "" means no admin UI

	JWTKeys        []JWTKey         // the first signs, all verify
	FieldKeys      []fieldcrypt.Key // the first seals, all open
	Generated      []string         // names of the secrets that were generated (embedded mode)
	ShutdownPeriod time.Duration

	// MaxConcurrentHashes bounds the password hashes running at once and
	// HashWait is how long a request waits for one (0: the defaults of
	// internal/hashlimit, the number of CPUs and 2s).
	MaxConcurrentHashes int
	HashWait            time.Duration

	// UnverifiedAccountTTL is how long an account may stay unverified;
	// then a deadline set at registration removes it and frees its
	// address.
	UnverifiedAccountTTL time.Duration

	// LoginLimitPerAddress is how many failed logins one client address
	// may make per minute (0: internal/throttle's default, 30).
	LoginLimitPerAddress int

	// TopicPrefix is put in front of every Kafka topic name and GroupPrefix
	// in front of every consumer group (and inbox handler) name. Empty in
	// normal use; tests set them to keep their topics and groups apart.
	TopicPrefix string
	GroupPrefix string
}

// Load reads the configuration through getenv (os.Getenv) and checks it,
// reporting every problem at once.
func Load(getenv func(string) string) (Config, error) {
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	c := Config{
		HTTPAddr:       get("HTTP_ADDR"),
		DatabaseURL:    get("DATABASE_URL"),
		ResendAPIKey:   get("RESEND_API_KEY"),
		ResendBaseURL:  get("RESEND_BASE_URL"),
		EmailFrom:      get("EMAIL_FROM"),
		AdminPassword:  getenv("ADMIN_PASSWORD"),
		ShutdownPeriod: 20 * time.Second,

		UnverifiedAccountTTL: DefaultUnverifiedAccountTTL,
		TopicPartitions:      DefaultTopicPartitions,
	}
	if v := get("KAFKA_BROKERS"); v != "" {
		for b := range strings.SplitSeq(v, ",") {
			c.KafkaBrokers = append(c.KafkaBrokers, strings.TrimSpace(b))
		}
	}
	if c.DatabaseURL != "" || len(c.KafkaBrokers) > 0 || c.ResendAPIKey != "" {
		c.Mode = Production
	}
	if c.HTTPAddr == "" {
		c.HTTPAddr = DefaultEmbeddedHTTPAddr
		if c.Mode == Production {
			c.HTTPAddr = DefaultProductionHTTPAddr
		}
	}

	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		bad("HTTP_ADDR", "%q is not host:port (e.g. :8080)", c.HTTPAddr)
	}

	if v := get("MAX_CONCURRENT_HASHES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("MAX_CONCURRENT_HASHES", "%q is not a whole number of at least 1", v)
		}
		c.MaxConcurrentHashes = n
	}
	if v := get("HASH_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("HASH_WAIT", "%q is not a positive duration (e.g. 2s)", v)
		}
		c.HashWait = d
	}
	if v := get("UNVERIFIED_ACCOUNT_TTL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad("UNVERIFIED_ACCOUNT_TTL", "%q is not a positive duration (e.g. 24h)", v)
		}
		c.UnverifiedAccountTTL = d
	}
	if v := get("KAFKA_TOPIC_PARTITIONS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 {
			bad("KAFKA_TOPIC_PARTITIONS", "%q is not a whole number of at least 1", v)
		}
		c.TopicPartitions = int32(n)
	}
	if v := get("KAFKA_REPLICATION_FACTOR"); v != "" {
		n, err := strconv.ParseInt(v, 10, 16)
		if err != nil || n < 1 {
			bad("KAFKA_REPLICATION_FACTOR", "%q is not a whole number of at least 1", v)
		}
		c.ReplicationFactor = int16(n)
	}
	if v := get("LOGIN_LIMIT_PER_ADDRESS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			bad("LOGIN_LIMIT_PER_ADDRESS", "%q is not a whole number of at least 1", v)
		}
		c.LoginLimitPerAddress = n
	}

	// Secrets: required in production, generated when embedded.
	if s := getenv("JWT_SECRET"); s != "" {
		keys, problems := parseJWTKeys(s)
		for _, p := range problems {
			bad("JWT_SECRET", "%s", p)
		}
		c.JWTKeys = keys
	}
	if s := get("FIELD_ENCRYPTION_KEY"); s != "" {
		keys, err := fieldcrypt.ParseKeys(s)
		if err != nil {
			bad("FIELD_ENCRYPTION_KEY", "%v (e.g. openssl rand -hex 32)", err)
		}
		c.FieldKeys = keys
	}

	if c.Mode == Production {
		var missing []string
		for _, v := range []struct {
			name string
			set  bool
		}{
			{"DATABASE_URL", c.DatabaseURL != ""}, {"KAFKA_BROKERS", len(c.KafkaBrokers) > 0},
			{"RESEND_API_KEY", c.ResendAPIKey != ""}, {"EMAIL_FROM", c.EmailFrom != ""},
			{"JWT_SECRET", getenv("JWT_SECRET") != ""}, {"FIELD_ENCRYPTION_KEY", get("FIELD_ENCRYPTION_KEY") != ""},
		} {
			if !v.set {
				missing = append(missing, v.name)
			}
		}
		if len(missing) > 0 {
			errs = append(errs, fmt.Errorf("production mode (DATABASE_URL, KAFKA_BROKERS or RESEND_API_KEY is set) also needs %s; unset all three to run embedded",
				strings.Join(missing, ", ")))
		}
		if c.DatabaseURL != "" {
			if err := checkDatabaseURL(c.DatabaseURL); err != nil {
				bad("DATABASE_URL", "%v", err)
			}
		}
		for _, b := range c.KafkaBrokers {
			if host, port, err := net.SplitHostPort(b); err != nil || host == "" || port == "" {
				bad("KAFKA_BROKERS", "%q is not host:port", b)
			}
		}
		if c.EmailFrom != "" {
			if _, err := mail.ParseAddress(c.EmailFrom); err != nil {
				bad("EMAIL_FROM", "%q is not an email address: %v", c.EmailFrom, err)
			}
		}
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < MinAdminPassword {
		bad("ADMIN_PASSWORD", "is %d bytes long, needs at least %d", len(c.AdminPassword), MinAdminPassword)
	}
	if c.ResendBaseURL != "" {
		if u, err := url.Parse(c.ResendBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("RESEND_BASE_URL", "%q is not an http(s) URL", c.ResendBaseURL)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}

	if c.Mode == Embedded {
		if c.JWTKeys == nil {
			c.JWTKeys = []JWTKey{{Secret: []byte(fieldcrypt.GenerateKey())}}
			c.Generated = append(c.Generated, "JWT_SECRET")
		}
		if c.FieldKeys == nil {
			key, err := fieldcrypt.ParseKey(fieldcrypt.GenerateKey())
			if err != nil {
				return Config{}, err
			}
			c.FieldKeys = []fieldcrypt.Key{{Secret: key}}
			c.Generated = append(c.Generated, "FIELD_ENCRYPTION_KEY")
		}
	}
	return c, nil
}

// checkDatabaseURL parses a PostgreSQL URL (or key=value string) the way
// the pool will, without connecting. Its errors never echo the password.
func checkDatabaseURL(s string) error {
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil {
			return errors.New("is not a valid URL")
		}
		if u.Scheme != "postgres" && u.Scheme != "postgresql" {
			return fmt.Errorf("scheme %q is not postgres:// or postgresql://", u.Scheme)
		}
	}
	if _, err := pgxpool.ParseConfig(s); err != nil {
		return errors.New("cannot be parsed as a PostgreSQL connection string")
	}
	return nil
}
