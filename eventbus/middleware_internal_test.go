package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/retry"
)

// runRetry runs a handler that returns errs in turn (then nil) through
// the retry middleware and returns its error and the number of calls.
func runRetry(ctx context.Context, p retry.Policy, errs ...error) (int, error) {
	calls := 0
	h := retryMiddleware(slog.New(slog.DiscardHandler), p, "h")(func(*message.Message) ([]*message.Message, error) {
		calls++
		if calls <= len(errs) {
			return nil, errs[calls-1]
		}
		return nil, nil
	})
	msg := message.NewMessage("1", nil)
	msg.SetContext(ctx)
	_, err := h(msg)
	return calls, err
}

func TestRetryMiddleware(t *testing.T) {
	t.Parallel()
	p := retry.Policy{MaxAttempts: 3, BaseDelay: time.Microsecond, MaxDelay: time.Millisecond}
	boom := errors.New("boom")

	calls, err := runRetry(t.Context(), p, boom, boom)
	if err != nil || calls != 3 {
		t.Fatalf("two failures then success: err %v, calls %d; want nil, 3", err, calls)
	}

	calls, err = runRetry(t.Context(), p, boom, boom, boom, boom)
	var re *retry.Error
	if !errors.As(err, &re) || re.Attempts != 3 || !errors.Is(err, boom) || calls != 3 {
		t.Fatalf("attempts used up: err %v, calls %d; want a *retry.Error after 3 attempts wrapping boom", err, calls)
	}
	if got, want := err.Error(), "gave up after 3 attempts: boom"; got != want {
		t.Fatalf("error %q, want %q", got, want)
	}

	perm := Permanent(boom)
	calls, err = runRetry(t.Context(), p, perm)
	if !errors.Is(err, ErrPermanent) || errors.As(err, &re) || calls != 1 {
		t.Fatalf("permanent: err %v, calls %d; want it unchanged after 1 call", err, calls)
	}

	down := fmt.Errorf("db: %w", ErrUnavailable)
	calls, err = runRetry(t.Context(), p, down, down, down, down, boom, boom)
	if err != nil || calls != 7 {
		t.Fatalf("unavailable errors do not count: err %v, calls %d; want nil, 7", err, calls)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	calls, err = runRetry(ctx, p, boom)
	if !errors.Is(err, errShutdown) || !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("stopping: err %v, calls %d; want errShutdown wrapping boom after 1 call", err, calls)
	}
}

func TestRouterRetryDefaults(t *testing.T) {
	t.Parallel()
	tr := NewMemoryTransport(nil)
	defer func() { _ = tr.Close() }()
	reg := NewRegistry(&RegistryConfig{Source: "urn:dddkit:test"})
	for _, c := range []struct {
		cfg  *RouterConfig
		want retry.Policy
	}{
		{nil, retry.Policy{MaxAttempts: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second}},
		{&RouterConfig{Retry: retry.Policy{MaxAttempts: 2}}, retry.Policy{MaxAttempts: 2, BaseDelay: 100 * time.Millisecond, MaxDelay: 10 * time.Second}},
		{&RouterConfig{Retry: retry.Policy{BaseDelay: time.Minute}}, retry.Policy{MaxAttempts: 5, BaseDelay: time.Minute, MaxDelay: time.Minute}},
	} {
		r, err := NewRouter(tr, reg, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.cfg.Retry != c.want {
			t.Errorf("NewRouter(%+v): Retry = %+v, want %+v", c.cfg, r.cfg.Retry, c.want)
		}
	}
}
