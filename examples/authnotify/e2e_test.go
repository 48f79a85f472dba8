package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
	"github.com/dddkit/dddkit/valueobject"
)

// The sign-up flow over HTTP in embedded mode: every email arrives in the
// dev mailbox (GET /dev/emails) exactly once.
func TestEmbeddedFlow(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(env(map[string]string{"HTTP_ADDR": "127.0.0.1:0"}))
	require.NoError(t, err)
	require.Equal(t, config.Embedded, cfg.Mode)
	// dddkit's metrics are the process's, and the tests run several
	// instances in one process: prefixes tell this one's series apart.
	prefix := dddkittest.UniqueName(t) + "."
	cfg.TopicPrefix, cfg.GroupPrefix = prefix, prefix
	app := start(t, cfg)

	mailbox := func() []sentEmail {
		var out []sentEmail
		status := call(t, http.MethodGet, app.base+"/dev/emails", "", nil, &out)
		require.Equal(t, http.StatusOK, status)
		return out
	}
	signUpFlow(t, []string{app.base}, mailbox, "ada@example.com")

	requireMetrics(t, app.base,
		`authnotify_http_requests_total{route="POST /auth/register",status="201"} 1`,
		`authnotify_email_jobs_total{outcome="succeeded"} 3`,
		// registered, verified, password changed
		`dddkit_outbox_relay_published_total{messaging_destination_name="`+prefix+`user.events"} 3`,
		`dddkit_consumer_events_total{dddkit_outcome="handled",messaging_consumer_group_name="`+prefix+`notification.emails",messaging_destination_name="`+prefix+`user.events"} 3`,
		`dddkit_bus_dispatch_duration_seconds_count{dddkit_kind="command",dddkit_name="auth.register_user",dddkit_outcome="ok"} `,
		"\ndddkit_outbox_pending ", "\ndddkit_outbox_relay_leader ",
		"\ngo_goroutines ", "\nprocess_resident_memory_bytes ")
}

// The same flow in production mode: PostgreSQL, Kafka, River and a fake
// Resend reached through the SDK's base URL. Each email is requested from
// Resend exactly once.
func TestProductionFlow(t *testing.T) {
	t.Parallel()
	resend := newFakeResend(t)
	cfg := productionConfig(t, resend.URL)
	app := start(t, cfg)
	// Start-up provisioned the topics, with KAFKA_TOPIC_PARTITIONS.
	requireTopic(t, cfg.TopicPrefix+"user.events", 4)
	requireTopic(t, cfg.TopicPrefix+"dddkit.dead_letters", 4)

	signUpFlow(t, []string{app.base}, resend.sent, "grace@example.com")
	resend.requireEachKeyOnce(t)

	status := call(t, http.MethodGet, app.base+"/readyz", "", nil, nil)
	require.Equal(t, http.StatusOK, status)
	requireMetrics(t, app.base, `authnotify_email_jobs{state="completed"} 3`,
		`dddkit_outbox_relay_published_total{messaging_destination_name="`+cfg.TopicPrefix+`user.events"} 3`,
		`dddkit_consumer_events_total{dddkit_outcome="handled",messaging_consumer_group_name="`+cfg.GroupPrefix+`notification.emails",messaging_destination_name="`+cfg.TopicPrefix+`user.events"} 3`,
		// The activity projection consumes in batches: its lag per
		// partition comes from the fetches' high watermarks.
		`dddkit_consumer_lag{messaging_consumer_group_name="`+cfg.GroupPrefix+`auth.activity",messaging_destination_name="`+cfg.TopicPrefix+`user.events",messaging_destination_partition_id="`,
		"\ndddkit_outbox_pending ", "\ngo_goroutines ")

	// River's UI, behind the admin password.
	resp, err := http.Get(app.base + "/admin/jobs/")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, app.base+"/admin/jobs/api/jobs?state=completed&limit=10", nil)
	require.NoError(t, err)
	req.SetBasicAuth("admin", adminPassword)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var jobs struct {
		Data []struct {
			Kind string `json:"kind"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&jobs))
	require.Len(t, jobs.Data, 3)
	require.Equal(t, "notification.email", jobs.Data[0].Kind)

	// A cross-site POST carrying the admin credentials (as a browser would
	// send them along) is refused before it reaches River's UI.
	req, err = http.NewRequestWithContext(t.Context(), http.MethodPost, app.base+"/admin/jobs/api/jobs/cancel", strings.NewReader(`{"ids":["1"]}`))
	require.NoError(t, err)
	req.SetBasicAuth("admin", adminPassword)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

const adminPassword = "an admin password for tests"

// Two replicas against one database and one broker: the relays share the
// outbox's shards, the consumers share one consumer group, River runs each job
// once. Requests alternate between the replicas, and every email is still
// sent exactly once.
func TestTwoInstancesSendEachEmailOnce(t *testing.T) {
	t.Parallel()
	resend := newFakeResend(t)
	cfg := productionConfig(t, resend.URL)
	var logA, logB syncBuffer
	a := startLogging(t, cfg, slog.New(slog.NewJSONHandler(&logA, nil)))
	b := startLogging(t, cfg, slog.New(slog.NewJSONHandler(&logB, nil)))

	signUpFlow(t, []string{a.base, b.base}, resend.sent, "hopper@example.com")
	signUpFlow(t, []string{b.base, a.base}, resend.sent, "lovelace@example.com")
	resend.requireEachKeyOnce(t)
	require.Len(t, resend.sent(), 6)

	// Both replicas run in this test's process, whose dddkit series (the
	// relay leader gauge) are those of every test: their logs say which
	// relay leads.
	leads := func(log *syncBuffer) bool {
		last := regexp.MustCompile(`"msg":"outbox relay leadership","leader":(true|false)`).FindAllStringSubmatch(log.String(), -1)
		return len(last) > 0 && last[len(last)-1][1] == "true"
	}
	require.True(t, leads(&logA) && leads(&logB), "both relays publish, each leading its share of the outbox's shards")
}

// productionConfig returns a production configuration with a schema,
// topics and consumer groups of the test's own, sending to resendURL.
func productionConfig(t *testing.T, resendURL string) config.Config {
	t.Helper()
	dbURL, schema := pgtest.SchemaURL(t)
	brokers := kafkatest.Brokers(t)
	cfg, err := config.Load(env(map[string]string{
		"HTTP_ADDR":            "127.0.0.1:0",
		"DATABASE_URL":         dbURL,
		"KAFKA_BROKERS":        strings.Join(brokers, ","),
		"RESEND_API_KEY":       fakeResendKey,
		"RESEND_BASE_URL":      resendURL,
		"EMAIL_FROM":           "authnotify <no-reply@example.com>",
		"JWT_SECRET":           "a test secret that is at least 32 bytes long",
		"FIELD_ENCRYPTION_KEY": "5f1c0e8a9b3d47e2a6c81f0d2b9e7a4c3d6f1b8e0a2c4e6f8a1b3c5d7e9f0a2b",
		"ADMIN_PASSWORD":       adminPassword,
		// The broker creates no topic on first use: the system provisions
		// its own at start-up.
		"KAFKA_TOPIC_PARTITIONS": "4",
	}))
	require.NoError(t, err)
	require.Equal(t, config.Production, cfg.Mode)
	prefix := strings.ReplaceAll(schema, "_", "-") + "."
	cfg.TopicPrefix, cfg.GroupPrefix = prefix, prefix
	cfg.ShutdownPeriod = 5 * time.Second
	kafkatest.DeleteTopicsAtEnd(t, prefix+"user.events", prefix+"dddkit.dead_letters")
	return cfg
}

// requireTopic fails the test unless topic exists with partitions
// partitions.
func requireTopic(t *testing.T, topic string, partitions int) {
	t.Helper()
	admin, err := sarama.NewClusterAdmin(kafkatest.Brokers(t), kafkatest.Config(t))
	require.NoError(t, err)
	defer admin.Close()
	meta, err := admin.DescribeTopics([]string{topic})
	require.NoError(t, err)
	require.Len(t, meta, 1)
	require.ErrorIs(t, meta[0].Err, sarama.ErrNoError, "topic %s", topic)
	require.Len(t, meta[0].Partitions, partitions, "partitions of %s", topic)
}

func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// startMode starts the application in mode, "embedded" (the dev mailbox)
// or "production" (PostgreSQL, Kafka, a fake Resend), with edit (if set)
// applied to its configuration, and returns it with the emails it sent.
func startMode(t *testing.T, mode string, edit func(*config.Config)) (*instance, func() []sentEmail) {
	t.Helper()
	var (
		cfg    config.Config
		emails func() []sentEmail
	)
	if mode == "embedded" {
		var err error
		cfg, err = config.Load(env(map[string]string{"HTTP_ADDR": "127.0.0.1:0"}))
		require.NoError(t, err)
	} else {
		resend := newFakeResend(t)
		cfg, emails = productionConfig(t, resend.URL), resend.sent
	}
	if edit != nil {
		edit(&cfg)
	}
	app := start(t, cfg)
	if emails == nil {
		emails = func() []sentEmail {
			var out []sentEmail
			require.Equal(t, http.StatusOK, call(t, http.MethodGet, app.base+"/dev/emails", "", nil, &out))
			return out
		}
	}
	return app, emails
}

// instance is one running application.
type instance struct {
	base string
	// stop shuts the application down and waits for it (the test's
	// cleanup does it otherwise).
	stop func()
}

// start runs the application in process until the test ends; the test
// fails if it does not start or does not shut down cleanly.
func start(t *testing.T, cfg config.Config) *instance {
	t.Helper()
	return startLogging(t, cfg, testLogger())
}

// startLogging is start with the application's logs going to logger.
func startLogging(t *testing.T, cfg config.Config, logger *slog.Logger) *instance {
	t.Helper()
	hasher, err := valueobject.NewHasher(&valueobject.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, runtime{
			Logger:    logger,
			Listening: func(a net.Addr) { listening <- a },
			Hasher:    hasher,
			// The gauges of /metrics are read in the background; a short
			// interval lets the assertions below see them soon.
			GaugeRefresh: 20 * time.Millisecond,
		})
	}()
	select {
	case addr := <-listening:
		var once sync.Once
		stop := func() {
			once.Do(func() {
				cancel()
				select {
				case err := <-done:
					require.NoError(t, err, "clean shutdown")
				case <-time.After(30 * time.Second):
					t.Error("the application did not stop within 30s")
				}
			})
		}
		t.Cleanup(stop)
		return &instance{base: "http://" + addr.String(), stop: stop}
	case err := <-done:
		cancel()
		t.Fatalf("the application did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("the application did not start within 60s")
	}
	return nil
}

// testLogger discards the application's logs unless AUTHNOTIFY_TEST_LOG
// is set.
func testLogger() *slog.Logger {
	if os.Getenv("AUTHNOTIFY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// sentEmail is an email as the tests see it, from either mailbox.
type sentEmail struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
}

var codePattern = regexp.MustCompile(`\b(\d{6})\b`)

// signUpFlow runs register → verification email → verify → welcome email
// → login → change password → security email, spreading the requests
// over bases, and checks that the user got exactly these three emails.
func signUpFlow(t *testing.T, bases []string, emails func() []sentEmail, email string) {
	t.Helper()
	base := func(i int) string { return bases[i%len(bases)] }
	const password, newPassword = "correct horse battery", "battery staple horse"

	var reg struct {
		Data struct {
			RegistrationToken string `json:"registrationToken"`
		} `json:"data"`
	}
	status := call(t, http.MethodPost, base(0)+"/auth/register", "", map[string]string{"email": email, "password": password}, &reg)
	require.Equal(t, http.StatusCreated, status)
	verification := waitEmail(t, emails, email, "verification code")
	m := codePattern.FindStringSubmatch(verification.Text)
	require.NotNil(t, m, "a 6-digit code in %q", verification.Text)

	status = call(t, http.MethodPost, base(1)+"/auth/verify", "", map[string]string{"email": email, "code": m[1], "registrationToken": reg.Data.RegistrationToken}, nil)
	require.Equal(t, http.StatusOK, status)
	waitEmail(t, emails, email, "Welcome")

	var login struct {
		Data struct {
			AccessToken string `json:"accessToken"`
		} `json:"data"`
	}
	status = call(t, http.MethodPost, base(2)+"/auth/login", "", map[string]string{"email": email, "password": password}, &login)
	require.Equal(t, http.StatusOK, status)
	require.NotEmpty(t, login.Data.AccessToken)

	status = call(t, http.MethodPatch, base(3)+"/auth/password", login.Data.AccessToken,
		map[string]string{"currentPassword": password, "newPassword": newPassword}, nil)
	require.Equal(t, http.StatusOK, status)
	waitEmail(t, emails, email, "password was changed")

	status = call(t, http.MethodPost, base(4)+"/auth/login", "", map[string]string{"email": email, "password": password}, nil)
	require.Equal(t, http.StatusUnauthorized, status, "the old password stopped working")
	// Tokens die with the password, on every replica and every
	// authenticated endpoint.
	oldToken := login.Data.AccessToken
	status = call(t, http.MethodGet, base(4)+"/auth/me", oldToken, nil, nil)
	require.Equal(t, http.StatusUnauthorized, status, "a token issued before the password change is revoked")
	status = call(t, http.MethodGet, base(5)+"/auth/me", oldToken, nil, nil)
	require.Equal(t, http.StatusUnauthorized, status, "revoked on the other replica too")
	status = call(t, http.MethodPatch, base(5)+"/auth/password", oldToken,
		map[string]string{"currentPassword": newPassword, "newPassword": password}, nil)
	require.Equal(t, http.StatusUnauthorized, status, "the old token cannot change the password again")

	status = call(t, http.MethodPost, base(5)+"/auth/login", "", map[string]string{"email": email, "password": newPassword}, &login)
	require.Equal(t, http.StatusOK, status)
	var me struct {
		Data struct {
			Status string `json:"status"`
		} `json:"data"`
	}
	status = call(t, http.MethodGet, base(6)+"/auth/me", login.Data.AccessToken, nil, &me)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "verified", me.Data.Status)

	// Give duplicates a chance to show up, then count.
	time.Sleep(500 * time.Millisecond)
	var subjects []string
	for _, e := range emails() {
		if e.To == email {
			subjects = append(subjects, e.Subject)
		}
	}
	require.Equal(t, []string{
		"Your authnotify verification code", "Welcome to authnotify", "Your authnotify password was changed",
	}, subjects, "each email exactly once, in order")
}

// waitEmail waits for the email to to whose subject contains subject.
func waitEmail(t *testing.T, emails func() []sentEmail, to, subject string) sentEmail {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		for _, e := range emails() {
			if e.To == to && strings.Contains(e.Subject, subject) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no email %q to %s within 45s; got %+v", subject, to, emails())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// call sends a JSON request and decodes the JSON answer into out (if not
// nil); it returns the status.
func call(t *testing.T, method, url, token string, body, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, r)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out), "%s %s: %s", method, url, raw)
	}
	return resp.StatusCode
}

// requireMetrics scrapes /metrics until it has every line of want: the
// gauges are refreshed in the background.
func requireMetrics(t *testing.T, base string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		metrics := scrape(t, base)
		missing := slices.DeleteFunc(slices.Clone(want), func(w string) bool { return strings.Contains(metrics, w) })
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			require.Empty(t, missing, "lines missing from /metrics:\n%s", metrics)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

const fakeResendKey = "re_test_key"

// fakeResend is a stand-in for Resend's API: it records every POST
// /emails and, like Resend, answers a repeated idempotency key with the
// first answer without sending again.
type fakeResend struct {
	*httptest.Server
	mu       sync.Mutex
	requests map[string]int // by idempotency key
	emails   []sentEmail    // one per key, in arrival order
}

func newFakeResend(t *testing.T) *fakeResend {
	f := &fakeResend{requests: map[string]int{}}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/emails" {
			http.Error(w, `{"message":"not found"}`, http.StatusNotFound)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+fakeResendKey {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"message":"API key is invalid"}`)
			return
		}
		var body struct {
			From    string   `json:"from"`
			To      []string `json:"to"`
			Subject string   `json:"subject"`
			Text    string   `json:"text"`
			HTML    string   `json:"html"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.To) != 1 || body.From == "" || body.HTML == "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = io.WriteString(w, `{"message":"bad request"}`)
			return
		}
		key := r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		f.requests[key]++
		if f.requests[key] == 1 {
			f.emails = append(f.emails, sentEmail{To: body.To[0], Subject: body.Subject, Text: body.Text})
		}
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"id":%q}`, "email-"+key)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeResend) sent() []sentEmail {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentEmail(nil), f.emails...)
}

// requireEachKeyOnce checks that every email had an idempotency key and
// was requested once: no job ran twice.
func (f *fakeResend) requireEachKeyOnce(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, n := range f.requests {
		require.NotEmpty(t, key, "every email has an idempotency key")
		require.Equal(t, 1, n, "email %s requested %d times", key, n)
	}
}
