// Package keylock is a set of locks by key, for the in-memory adapters
// that serialise work per key (an inbox entry, a process instance) the way
// PostgreSQL's row and advisory locks do: a waiter gives up when its
// context ends.
package keylock

import (
	"context"
	"sync"
)

// Set holds one lock per key in use. The zero value is ready to use; a
// Set must not be copied after first use.
type Set[K comparable] struct {
	mu   sync.Mutex
	busy map[K]chan struct{}
}

// Lock waits until no one holds k and takes it, or returns ctx's error.
func (s *Set[K]) Lock(ctx context.Context, k K) error {
	for {
		s.mu.Lock()
		wait, busy := s.busy[k]
		if !busy {
			if s.busy == nil {
				s.busy = make(map[K]chan struct{})
			}
			s.busy[k] = make(chan struct{})
			s.mu.Unlock()
			return nil
		}
		s.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Unlock releases k, which the caller holds; the next waiter takes it.
func (s *Set[K]) Unlock(k K) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.busy[k]; ok {
		close(ch)
		delete(s.busy, k)
	}
}
