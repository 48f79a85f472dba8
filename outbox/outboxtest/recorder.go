package outboxtest

import (
	"slices"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Message is a message a [Recorder] accepted, with its topic.
type Message struct {
	Topic string
	*message.Message
}

// Recorder is a watermill publisher for tests of relays: it keeps every
// message it accepts, in order, and can be told to refuse some. It is
// safe for concurrent use. The zero value accepts everything.
type Recorder struct {
	mu     sync.Mutex
	msgs   []Message
	calls  int
	refuse func(topic string, m *message.Message) error
}

// Publish records msgs, or records none of them and returns the first
// error of the function given to [Recorder.Refuse] for one of them.
func (r *Recorder) Publish(topic string, msgs ...*message.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.refuse != nil {
		for _, m := range msgs {
			if err := r.refuse(topic, m); err != nil {
				return err
			}
		}
	}
	for _, m := range msgs {
		r.msgs = append(r.msgs, Message{Topic: topic, Message: m})
	}
	return nil
}

// Close does nothing; a Recorder keeps working after it.
func (r *Recorder) Close() error { return nil }

// Refuse makes Publish fail a call when f returns an error for one of
// its messages; nil accepts every message again.
func (r *Recorder) Refuse(f func(topic string, m *message.Message) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = f
}

// Len returns how many messages were accepted.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// Calls returns how many times Publish was called, refused calls
// included.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// Messages returns the accepted messages in the order they were
// published.
func (r *Recorder) Messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

var _ message.Publisher = (*Recorder)(nil)
