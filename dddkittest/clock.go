package dddkittest

import (
	"sync"
	"time"
)

// T0 is where a clock made by [NewClock] with a zero start stands:
// 2026-03-01 12:00:00 UTC, a fixed time so that test output is stable.
var T0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Clock is a clock a test controls, safe for concurrent use. Its Now
// method value is an aggregate.Clock and a func() time.Time.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at start, or at [T0] when start is
// the zero time.
func NewClock(start time.Time) *Clock {
	if start.IsZero() {
		start = T0
	}
	return &Clock{t: start}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d (backwards when d is negative) and returns
// the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
