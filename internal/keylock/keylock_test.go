package keylock_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/keylock"
)

func TestOneHolderPerKey(t *testing.T) {
	t.Parallel()
	var (
		s       keylock.Set[string]
		mu      sync.Mutex
		holders = map[string]int{}
		max     int
		wg      sync.WaitGroup
	)
	for i := range 40 {
		wg.Go(func() {
			k := []string{"a", "b"}[i%2]
			require.NoError(t, s.Lock(context.Background(), k))
			mu.Lock()
			holders[k]++
			max = maxInt(max, holders[k])
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			holders[k]--
			mu.Unlock()
			s.Unlock(k)
		})
	}
	wg.Wait()
	require.Equal(t, 1, max, "never two holders of one key")
}

func TestWaiterGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	var s keylock.Set[int]
	require.NoError(t, s.Lock(context.Background(), 1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, s.Lock(ctx, 1), context.Canceled)
	require.NoError(t, s.Lock(ctx, 2), "another key is free")
	s.Unlock(1)
	require.NoError(t, s.Lock(context.Background(), 1), "free again after Unlock")
}

func maxInt(a, b int) int {
	if a > b {
		return a
	}
	return b
}
