package eventbus

import (
	"testing"
	"time"
)

func TestBackoffIsBoundedAndJittered(t *testing.T) {
	t.Parallel()
	c := RetryConfig{MaxAttempts: 5, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	for n, bound := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := c.backoff(n)
			if d < bound/2 || d > bound {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, bound/2, bound)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("backoff(%d) took only %d distinct values: no jitter?", n, len(seen))
		}
	}
}
