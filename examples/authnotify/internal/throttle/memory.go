package throttle

import (
	"context"
	"sync"
	"time"
)

// Memory keeps the state in the process (embedded mode).
type Memory struct {
	cfg  Config
	mu   sync.Mutex
	keys map[string]*state
}

var _ Throttle = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(cfg *Config) *Memory {
	return &Memory{cfg: cfg.withDefaults(), keys: map[string]*state{}}
}

// Check implements [Throttle].
func (m *Memory) Check(_ context.Context, account, address string) error {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prune(now)
	return verdict(now, m.cfg.PerAddress, m.keys[accountKey(account)], m.keys[addressKey(address)])
}

// Failed implements [Throttle].
func (m *Memory) Failed(_ context.Context, account, address string) error {
	now := m.cfg.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	acc := m.get(accountKey(account))
	acc.failures++
	if b := Backoff(acc.failures); b > 0 {
		acc.blockedUntil = now.Add(b)
	}
	addr := m.get(addressKey(address))
	if !now.Before(addr.windowStart.Add(Window)) {
		addr.windowStart, addr.failures = now, 0
	}
	addr.failures++
	return nil
}

// Succeeded implements [Throttle].
func (m *Memory) Succeeded(_ context.Context, account string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, accountKey(account))
	return nil
}

func (m *Memory) get(k string) *state {
	s := m.keys[k]
	if s == nil {
		s = &state{}
		m.keys[k] = s
	}
	return s
}

// prune drops the address windows that ended once the map is large, so
// many client addresses do not grow it without bound.
func (m *Memory) prune(now time.Time) {
	if len(m.keys) < pruneAt {
		return
	}
	for k, s := range m.keys {
		if !s.windowStart.IsZero() && !now.Before(s.windowStart.Add(Window)) {
			delete(m.keys, k)
		}
	}
}

const pruneAt = 10000
