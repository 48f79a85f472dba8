package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/internal/config"
	"github.com/dddkit/dddkit/valueobject"
)

// gatedHasher is a cheap argon2id hasher that, once armed, holds every
// call until released: a slow hasher under the test's control.
type gatedHasher struct {
	real    *valueobject.Hasher
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (g *gatedHasher) hold() {
	if g.armed.Load() {
		g.entered <- struct{}{}
		<-g.release
	}
}

func (g *gatedHasher) Hash(pw valueobject.Password) (string, error) {
	g.hold()
	return g.real.Hash(pw)
}

func (g *gatedHasher) Verify(hash, plain string) error {
	g.hold()
	return g.real.Verify(hash, plain)
}

// Issue 9, row 5: with MAX_CONCURRENT_HASHES=1, a request that needs a
// hash while another one runs waits HASH_WAIT, then answers 503 with
// Retry-After, on registration and on login (an unknown address too, so
// that load tells no accounts apart).
func TestHashingIsBoundedAndOverloadAnswers503(t *testing.T) {
	t.Parallel()
	const wait = 300 * time.Millisecond
	cfg, err := config.Load(env(map[string]string{
		"HTTP_ADDR": "127.0.0.1:0", "MAX_CONCURRENT_HASHES": "1", "HASH_WAIT": wait.String(),
	}))
	require.NoError(t, err)
	real, err := valueobject.NewHasher(&valueobject.Argon2Params{Memory: 64, Iterations: 1, Parallelism: 1})
	require.NoError(t, err)
	g := &gatedHasher{real: real, entered: make(chan struct{}, 1), release: make(chan struct{})}
	base := startWith(t, cfg, runtime{Logger: testLogger(), Hasher: g})

	// The first registration takes the only slot and holds it.
	g.armed.Store(true)
	first := make(chan int, 1)
	go func() {
		first <- call(t, http.MethodPost, base+"/auth/register", "", map[string]string{"email": "first@example.com", "password": "correct horse battery"}, nil)
	}()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first registration never reached the hasher")
	}

	for _, tc := range []struct{ path, email string }{
		{"/auth/register", "second@example.com"},
		{"/auth/login", "nobody@example.com"},
	} {
		begin := time.Now()
		resp := post(t, base+tc.path, map[string]string{"email": tc.email, "password": "correct horse battery"})
		require.Equal(t, http.StatusServiceUnavailable, resp.status, "%s: %s", tc.path, resp.body)
		require.GreaterOrEqual(t, time.Since(begin), wait, "%s waited for a slot first", tc.path)
		require.Equal(t, "1", resp.header.Get("Retry-After"), tc.path)
		require.Equal(t, "application/problem+json", resp.header.Get("Content-Type"), tc.path)
		var p struct {
			Type   string `json:"type"`
			Status int    `json:"status"`
		}
		require.NoError(t, json.Unmarshal(resp.body, &p))
		require.True(t, strings.HasSuffix(p.Type, "#busy"), p.Type)
		require.Equal(t, http.StatusServiceUnavailable, p.Status)
	}

	// Once the slot is free, hashing works again.
	g.armed.Store(false)
	close(g.release)
	require.Equal(t, http.StatusCreated, <-first)
	resp := post(t, base+"/auth/register", map[string]string{"email": "second@example.com", "password": "correct horse battery"})
	require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func post(t *testing.T, url string, body any) answer {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // unbounded hashing would block
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(string(b)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: raw}
}

// startWith runs the application with rt until the test ends and returns
// its base URL.
func startWith(t *testing.T, cfg config.Config, rt runtime) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan net.Addr, 1)
	done := make(chan error, 1)
	rt.Listening = func(a net.Addr) { listening <- a }
	go func() { done <- run(ctx, cfg, rt) }()
	select {
	case addr := <-listening:
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err, "clean shutdown")
			case <-time.After(30 * time.Second):
				t.Error("the application did not stop within 30s")
			}
		})
		return "http://" + addr.String()
	case err := <-done:
		cancel()
		t.Fatalf("the application did not start: %v", err)
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatal("the application did not start within 60s")
	}
	return ""
}
