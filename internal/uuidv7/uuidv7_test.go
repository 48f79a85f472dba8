package uuidv7

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewIsVersion7AndRoundTrips(t *testing.T) {
	t.Parallel()
	u := New()
	require.Equal(t, 7, u.Version())
	require.Equal(t, byte(0x80), u[8]&0xc0, "variant bits")
	got, err := Parse(u.String())
	require.NoError(t, err)
	require.Equal(t, u, got)
	require.WithinDuration(t, time.Now(), u.Time(), time.Second)
}

func TestNewIsStrictlyIncreasing(t *testing.T) {
	t.Parallel()
	fixed := time.UnixMilli(1_700_000_000_000)
	prev := NewAt(fixed)
	for range 10_000 { // more than the 12-bit counter holds: forces an overflow
		next := NewAt(fixed)
		require.Less(t, prev.String(), next.String())
		prev = next
	}
}

func TestNewConcurrentUnique(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[UUID]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				u := New()
				mu.Lock()
				require.False(t, seen[u])
				seen[u] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Len(t, seen, 8000)
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"", "0190c4d2-7b1a-7c3e-8f00-12345678901", // short
		"0190c4d2x7b1a-7c3e-8f00-123456789012",   // bad separator
		"0190c4d2-7b1a-7c3e-8f00-12345678901g",   // bad hex
		"{0190c4d2-7b1a-7c3e-8f00-123456789012}", // braces
	} {
		_, err := Parse(s)
		require.ErrorIs(t, err, ErrSyntax, s)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("0190c4d2-7b1a-7c3e-8f00-123456789012")
	f.Add("0190C4D2-7B1A-7C3E-8F00-12345678901A")
	f.Add("not a uuid")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(u.String())
		if err != nil || again != u {
			t.Fatalf("round trip of %q: %v %v", s, again, err)
		}
	})
}
