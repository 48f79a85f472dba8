package projectiontest

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/repository"
)

// Stream is a [repository.Stream] in memory that a test appends events
// to: the stream the suite's projections read.
type Stream struct {
	mu     sync.Mutex
	events []repository.StoredEvent
	wake   chan struct{} // closed on append
}

// NewStream returns an empty stream.
func NewStream() *Stream { return &Stream{wake: make(chan struct{})} }

var _ repository.Stream = (*Stream)(nil)

// Append adds envs at the end of the stream, with positions after the
// head (leaving a gap of one before each batch, as a rolled-back write
// would).
func (s *Stream) Append(envs ...aggregate.Envelope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos := int64(0)
	if n := len(s.events); n > 0 {
		pos = s.events[n-1].Position
	}
	pos++ // a gap
	for _, env := range envs {
		pos++
		s.events = append(s.events, repository.StoredEvent{Position: pos, Event: env, RecordedAt: time.Now()})
	}
	close(s.wake)
	s.wake = make(chan struct{})
}

// Read implements [repository.Stream].
func (s *Stream) Read(ctx context.Context, after int64, filter repository.StreamFilter, limit int) ([]repository.StoredEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearchFunc(s.events, after+1, func(e repository.StoredEvent, p int64) int {
		switch {
		case e.Position < p:
			return -1
		case e.Position > p:
			return 1
		}
		return 0
	})
	var out []repository.StoredEvent
	for _, e := range s.events[i:] {
		if len(out) == limit {
			break
		}
		if (len(filter.EventNames) == 0 || slices.Contains(filter.EventNames, e.Event.Name)) &&
			(len(filter.AggregateTypes) == 0 || slices.Contains(filter.AggregateTypes, e.Event.AggregateType)) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Head implements [repository.Stream].
func (s *Stream) Head(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.events); n > 0 {
		return s.events[n-1].Position, nil
	}
	return 0, nil
}

// Wait implements [repository.Stream].
func (s *Stream) Wait(ctx context.Context, after int64) error {
	s.mu.Lock()
	wake := s.wake
	newer := len(s.events) > 0 && s.events[len(s.events)-1].Position > after
	s.mu.Unlock()
	if newer {
		return nil
	}
	select {
	case <-wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
