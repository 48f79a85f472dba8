package hashlimit_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/examples/authnotify/internal/hashlimit"
	"github.com/dddkit/dddkit/valueobject"
)

// counting is a slow fake hasher that records how many of its calls
// overlap.
type counting struct {
	delay   time.Duration
	running atomic.Int32
	peak    atomic.Int32
}

func (c *counting) enter() {
	n := c.running.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(c.delay)
	c.running.Add(-1)
}

func (c *counting) Hash(valueobject.Password) (string, error) { c.enter(); return "hash", nil }
func (c *counting) Verify(string, string) error               { c.enter(); return nil }

func TestNeverMoreThanMaxRunAtOnce(t *testing.T) {
	t.Parallel()
	fake := &counting{delay: 5 * time.Millisecond}
	h, err := hashlimit.New(fake, &hashlimit.Config{Max: 3, Wait: 10 * time.Second})
	require.NoError(t, err)
	pw, err := valueobject.NewPassword("correct horse battery staple")
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			if i%2 == 0 {
				_, err := h.Hash(pw)
				require.NoError(t, err)
			} else {
				require.NoError(t, h.Verify("hash", "x"))
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(3), fake.peak.Load(), "Hash and Verify share the bound, and it is reached")
}

func TestBusyAfterTheWait(t *testing.T) {
	t.Parallel()
	fake := &counting{delay: 300 * time.Millisecond}
	h, err := hashlimit.New(fake, &hashlimit.Config{Max: 1, Wait: 50 * time.Millisecond})
	require.NoError(t, err)
	started := make(chan struct{})
	go func() {
		close(started)
		_ = h.Verify("hash", "x")
	}()
	<-started
	require.Eventually(t, func() bool { return fake.running.Load() == 1 }, time.Second, time.Millisecond)

	begin := time.Now()
	err = h.Verify("hash", "y")
	require.ErrorIs(t, err, hashlimit.ErrBusy)
	require.GreaterOrEqual(t, time.Since(begin), 50*time.Millisecond, "it waited first")
	var ra interface{ RetryAfter() time.Duration }
	require.True(t, errors.As(err, &ra))
	require.Equal(t, 50*time.Millisecond, ra.RetryAfter())
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	h, err := hashlimit.New(nil, nil)
	require.NoError(t, err)
	require.Positive(t, h.Max())
	_, err = hashlimit.New(nil, &hashlimit.Config{Max: -1})
	require.Error(t, err)
}
