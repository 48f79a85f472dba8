package eventbus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/retry"
)

// HeaderReleaseFor marks a message that [ReplayDeadLetter] or
// [SkipDeadLetter] published to release a parked key: its value is the
// name of the handler whose dead letter it releases. Every other
// consumer of the topic acknowledges the message without handling it.
const HeaderReleaseFor = "dddkit_release_for"

// ErrNoDeadLetter is returned by [DeadLetters] Get and Release, and by
// [ReplayDeadLetter] and [SkipDeadLetter], for a handler and key that
// have no dead letter.
var ErrNoDeadLetter = errors.New("eventbus: no dead letter for this handler and key")

// ErrReleasing is returned by [ReplayDeadLetter] and [SkipDeadLetter] for
// a dead letter that is already being released the other way (a replay
// asked for after a skip, or the reverse).
var ErrReleasing = errors.New("eventbus: dead letter already being released")

// ReleaseMode says what the consumer does with a dead event when its key
// is released.
type ReleaseMode string

const (
	// ReleaseNone means no release was asked for: the dead letter waits
	// for an operator.
	ReleaseNone ReleaseMode = ""
	// ReleaseReplay makes the consumer handle the dead event again, then the
	// events parked behind it, in order.
	ReleaseReplay ReleaseMode = "replay"
	// ReleaseSkip makes the consumer drop the dead event and handle the
	// events parked behind it, in order.
	ReleaseSkip ReleaseMode = "skip"
)

// ParkedEvent is a message a [DeadLetters] store holds for one handler and
// key: the dead event itself (until it is replayed or skipped) or one of
// the events parked behind it. It keeps what is needed to handle the
// message later exactly as it arrived.
type ParkedEvent struct {
	ID       string            // event ID (the message UUID)
	Name     string            // event name; may be empty for a message that did not decode
	Metadata map[string]string // the message's headers, as they arrived
	Payload  []byte            // the message's payload, as it arrived
	At       time.Time         // when it was stored
}

// DeadLetter is an event a consumer gave up on, and the key (aggregate)
// it holds back: while it exists the later events of its key for this
// handler are parked behind it, not handled. An operator ends it with
// [ReplayDeadLetter] or [SkipDeadLetter].
type DeadLetter struct {
	Handler    string      // the consumer (handler name, Kafka consumer group)
	Key        string      // the key it holds back: the aggregate ID (the message UUID when the message has none)
	Topic      string      // the topic the event was consumed from
	Event      ParkedEvent // the dead event
	Reason     string      // the error of the last attempt
	DeadAt     time.Time   // when the consumer gave up
	Parked     int         // events of Key parked behind it
	Release    ReleaseMode // the release an operator asked for, if any
	ReleasedAt time.Time   // when the release was asked for; zero without one
}

// DeadLetters stores the dead letters of consumers and the events parked
// behind each: the port that keeps a key's events in order when one of
// them fails for good. A [Router] uses it (see
// "Dead letters" in the package documentation); operators read it with
// List and Get and act with [ReplayDeadLetter] and [SkipDeadLetter]. Two
// adapters implement it: the PostgreSQL store of package
// [github.com/dddkit/dddkit/postgres] and [MemoryDeadLetters]; both pass
// the shared suite of package eventbustest.
//
// One consumer handles a key's events one at a time (Kafka: one
// partition, one member of the group), so the store need not order
// concurrent writes of one handler and key; it must keep the order of
// the events it is given.
type DeadLetters interface {
	// Add records dl as the dead letter of (dl.Handler, dl.Key), holding
	// dl.Event as its first event. When the key has a dead letter
	// already, dl.Event is parked behind it instead. An event already
	// held (same handler and event ID) is not stored twice. Parked,
	// Release and ReleasedAt of dl are ignored; DeadAt and Event.At may
	// be zero (now).
	Add(ctx context.Context, dl DeadLetter) error

	// Park appends ev to the events held for (handler, key) and reports
	// true when that key has a dead letter; otherwise it stores nothing
	// and reports false. An event already held (same handler and event
	// ID) is not appended again, and true is reported.
	Park(ctx context.Context, handler, key string, ev ParkedEvent) (parked bool, err error)

	// Parked returns those of keys that have a dead letter of handler.
	Parked(ctx context.Context, handler string, keys []string) ([]string, error)

	// List returns the dead letters of handler ("" for every handler),
	// ordered by handler and then by DeadAt.
	List(ctx context.Context, handler string) ([]DeadLetter, error)

	// Get returns the dead letter of (handler, key) and the events
	// parked behind it, in order; [ErrNoDeadLetter] when there is none.
	Get(ctx context.Context, handler, key string) (DeadLetter, []ParkedEvent, error)

	// Release records that the dead letter of (handler, key) is to be
	// released with mode and returns it. Asking again for the same mode
	// changes nothing; for the other mode while one is pending it
	// returns [ErrReleasing]; [ErrNoDeadLetter] when there is none.
	Release(ctx context.Context, handler, key string, mode ReleaseMode) (DeadLetter, error)

	// Next returns the first event held for (handler, key): the dead
	// event while it is held, then the parked ones in order. ok is false
	// when nothing is held.
	Next(ctx context.Context, handler, key string) (ev ParkedEvent, ok bool, err error)

	// Remove drops the held event eventID of (handler, key). When that
	// was the last one, the dead letter is removed too: the key is no
	// longer parked.
	Remove(ctx context.Context, handler, key, eventID string) error

	// Fail makes the held event eventID the dead letter of (handler,
	// key), with reason, and clears the release: the events held after
	// it stay parked.
	Fail(ctx context.Context, handler, key, eventID, reason string) error
}

// ReplayDeadLetter releases the key of handler's dead letter for key: the
// consumer handles the dead event again (fix the handler, or whatever it
// depends on, first), then every event parked behind it, in order, and
// then the key's events flow as before. If the dead event, or a parked
// one, fails for good again, it becomes the key's dead letter and the
// rest stay parked.
//
// It records the release in store and publishes the dead event, with
// [HeaderReleaseFor] set to handler, back to its original topic with its
// key through pub (on Kafka, the producer of a kafka.Client): arriving on
// the key's partition, behind every event parked so far, it makes the
// running consumer release the key in order. Other consumers of the
// topic acknowledge that message without handling it. The consumer need
// not run when this is called; it releases the key when it gets there.
func ReplayDeadLetter(ctx context.Context, store DeadLetters, pub message.Publisher, handler, key string) error {
	return releaseDeadLetter(ctx, store, pub, handler, key, ReleaseReplay)
}

// SkipDeadLetter releases the key of handler's dead letter for key as
// [ReplayDeadLetter] does, but drops the dead event instead of handling
// it: the events parked behind it are handled in order.
func SkipDeadLetter(ctx context.Context, store DeadLetters, pub message.Publisher, handler, key string) error {
	return releaseDeadLetter(ctx, store, pub, handler, key, ReleaseSkip)
}

func releaseDeadLetter(ctx context.Context, store DeadLetters, pub message.Publisher, handler, key string, mode ReleaseMode) error {
	if store == nil || pub == nil {
		return fmt.Errorf("eventbus: %s dead letter: need a DeadLetters store and a Publisher", mode)
	}
	dl, err := store.Release(ctx, handler, key, mode)
	if err != nil {
		return fmt.Errorf("eventbus: %s dead letter of %q key %q: %w", mode, handler, key, err)
	}
	msg := dl.Event.message()
	msg.Metadata.Set(HeaderReleaseFor, handler)
	if msg.Metadata.Get(HeaderAggregateID) == "" {
		// A message of a producer from before the CloudEvents headers, or
		// one without an aggregate: the key must still reach the Kafka
		// producer, which keys by this header.
		msg.Metadata.Set(HeaderAggregateID, dl.Key)
	}
	if err := pub.Publish(dl.Topic, msg); err != nil {
		return fmt.Errorf("eventbus: %s dead letter of %q key %q: publish to %q: %w", mode, handler, key, dl.Topic, err)
	}
	return nil
}

// message rebuilds the message ev was stored from.
func (ev ParkedEvent) message() *message.Message {
	msg := message.NewMessage(ev.ID, slices.Clone(ev.Payload))
	msg.Metadata = make(message.Metadata, len(ev.Metadata)+1)
	maps.Copy(msg.Metadata, ev.Metadata)
	return msg
}

// parkedEvent is what a store keeps of msg.
func parkedEvent(msg *message.Message) ParkedEvent {
	md := make(map[string]string, len(msg.Metadata))
	maps.Copy(md, msg.Metadata)
	delete(md, HeaderReleaseFor)
	env, _ := wire.FromMessage(msg)
	return ParkedEvent{ID: messageEventID(msg), Name: env.Name, Metadata: md, Payload: slices.Clone(msg.Payload)}
}

// messageEventID is the event ID of msg, the message UUID without one.
func messageEventID(msg *message.Message) string {
	if id := wire.EventID(msg.Metadata); id != "" {
		return id
	}
	return msg.UUID
}

// messageKey is the key msg is parked by: its aggregate ID, which is also
// its Kafka key, or the message UUID when it has none (as the Kafka
// producer keys it).
func messageKey(msg *message.Message) string {
	if id := wire.AggregateID(msg.Metadata); id != "" {
		return id
	}
	return msg.UUID
}

// parking keeps one consumer's keys in order around its dead letters: it
// parks the events of a key that has a dead letter, records new dead
// letters (and publishes their copy to the dead-letter topic), and
// releases a key when its release message arrives.
type parking struct {
	store   DeadLetters
	handler string
	topic   string // consumed
	dlTopic string // the dead-letter topic
	pub     message.Publisher
	logger  *slog.Logger
	wait    retry.Policy // between attempts to reach the store or the topic
}

// admit is called before msg is handled. It reports taken when msg is not
// to be handled now: parked behind its key's dead letter, a release
// message that it processed with apply, or one for another handler. An
// error means msg is to be delivered again (the consumer is stopping).
func (p *parking) admit(ctx context.Context, msg *message.Message, apply func(*message.Message) error) (taken bool, err error) {
	if h, ok := msg.Metadata[HeaderReleaseFor]; ok {
		if h != p.handler {
			p.logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: release of another handler acknowledged",
				slog.String("handler", p.handler), slog.String("release_for", h), slog.String("event_id", msg.UUID))
			return true, nil
		}
		return true, p.release(ctx, msg, apply)
	}
	key := messageKey(msg)
	var parked bool
	err = p.persist(ctx, "read parked keys", func() error {
		keys, err := p.store.Parked(ctx, p.handler, []string{key})
		parked = len(keys) > 0
		return err
	})
	if err != nil || !parked { // the usual case: one cheap look-up, nothing stored
		return false, err
	}
	ev := parkedEvent(msg)
	err = p.persist(ctx, "park event", func() (err error) {
		parked, err = p.store.Park(ctx, p.handler, key, ev)
		return err
	})
	if err != nil {
		return false, err
	}
	if parked {
		p.logger.LogAttrs(ctx, slog.LevelInfo, "eventbus: event parked behind its key's dead letter",
			slog.String("handler", p.handler), slog.String("key", key),
			slog.String("event", ev.Name), slog.String("event_id", ev.ID))
	}
	return parked, nil
}

// deadLetter records msg, which failed for good with cause, as the dead
// letter of its key (parking the key's later events) and publishes a copy
// to the dead-letter topic with the reason, topic and handler in headers.
// It tries until it succeeds or ctx ends.
func (p *parking) deadLetter(ctx context.Context, msg *message.Message, cause error) error {
	ev := parkedEvent(msg)
	dl := DeadLetter{Handler: p.handler, Key: messageKey(msg), Topic: p.topic, Event: ev, Reason: cause.Error()}
	if err := p.persist(ctx, "record dead letter", func() error { return p.store.Add(ctx, dl) }); err != nil {
		return err
	}
	return p.publishCopy(ctx, msg, dl.Key, cause)
}

// publishCopy publishes msg to the dead-letter topic.
func (p *parking) publishCopy(ctx context.Context, msg *message.Message, key string, cause error) error {
	cp := message.NewMessage(msg.UUID, slices.Clone(msg.Payload))
	cp.Metadata = make(message.Metadata, len(msg.Metadata)+3)
	maps.Copy(cp.Metadata, msg.Metadata)
	delete(cp.Metadata, HeaderReleaseFor)
	cp.Metadata.Set(HeaderDeadLetterReason, cause.Error())
	cp.Metadata.Set(HeaderDeadLetterTopic, p.topic)
	cp.Metadata.Set(HeaderDeadLetterHandler, p.handler)
	if err := p.persist(ctx, "publish dead letter", func() error { return p.pub.Publish(p.dlTopic, cp) }); err != nil {
		return err
	}
	p.logger.LogAttrs(ctx, slog.LevelError, "eventbus: event dead-lettered, later events of its key parked",
		slog.String("handler", p.handler), slog.String("topic", p.topic), slog.String("key", key),
		slog.String("dead_letter_topic", p.dlTopic),
		slog.String("event", msg.Metadata.Get(HeaderEventName)),
		slog.String("event_id", msg.Metadata.Get(HeaderEventID)),
		slog.Any("error", cause))
	return nil
}

// release processes a release message of this handler: when it is for
// the key's current dead letter and a release was asked for, it hands
// the dead event (unless skipped) and then the parked events to apply, in
// order, removing each once applied. An event that fails for good
// becomes the key's dead letter and the release stops there.
func (p *parking) release(ctx context.Context, marker *message.Message, apply func(*message.Message) error) error {
	key, id := messageKey(marker), messageEventID(marker)
	attrs := []slog.Attr{slog.String("handler", p.handler), slog.String("key", key), slog.String("event_id", id)}
	var dl DeadLetter
	err := p.persist(ctx, "read dead letter", func() (err error) {
		dl, _, err = p.store.Get(ctx, p.handler, key)
		if errors.Is(err, ErrNoDeadLetter) {
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if dl.Event.ID != id || dl.Release == ReleaseNone {
		p.logger.LogAttrs(ctx, slog.LevelDebug, "eventbus: stale release acknowledged", attrs...)
		return nil
	}
	p.logger.LogAttrs(ctx, slog.LevelInfo, "eventbus: releasing parked key", append(attrs, slog.String("mode", string(dl.Release)))...)
	for n := 0; ; n++ {
		var ev ParkedEvent
		var ok bool
		if err := p.persist(ctx, "read parked event", func() (err error) {
			ev, ok, err = p.store.Next(ctx, p.handler, key)
			return err
		}); err != nil {
			return err
		}
		if !ok {
			p.logger.LogAttrs(ctx, slog.LevelInfo, "eventbus: key released", append(attrs, slog.Int("events", n))...)
			return nil
		}
		if ev.ID != dl.Event.ID || dl.Release != ReleaseSkip {
			msg := ev.message()
			msg.SetContext(ctx)
			if cause := apply(msg); cause != nil {
				if !deadLetterable(cause) {
					return cause
				}
				if err := p.persist(ctx, "record dead letter", func() error {
					return p.store.Fail(ctx, p.handler, key, ev.ID, cause.Error())
				}); err != nil {
					return err
				}
				return p.publishCopy(ctx, msg, key, cause)
			}
		}
		if err := p.persist(ctx, "remove parked event", func() error {
			return p.store.Remove(ctx, p.handler, key, ev.ID)
		}); err != nil {
			return err
		}
	}
}

// persist runs fn until it succeeds, waiting between attempts as p.wait
// says; when ctx ends first it returns an error marked as shutdown (the
// message is delivered again).
func (p *parking) persist(ctx context.Context, what string, fn func() error) error {
	for n := 1; ; n++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: %w", errShutdown, what, err)
		}
		delay := p.wait.Delay(n)
		p.logger.LogAttrs(ctx, slog.LevelError, "eventbus: dead letters: "+what+" failed, retrying",
			slog.String("handler", p.handler), slog.Duration("delay", delay), slog.Any("error", err))
		if retry.Sleep(ctx, delay) != nil {
			return fmt.Errorf("%w: %s: %w", errShutdown, what, err)
		}
	}
}

// lot is one batch's view of the parked keys of a consumer: which keys of
// the batch have a dead letter, so that only their events (and release
// messages) go to the store.
type lot struct {
	p      *parking
	parked map[string]bool
}

// lot asks the store which keys of msgs are parked.
func (p *parking) lot(ctx context.Context, msgs []*message.Message) (*lot, error) {
	keys := make([]string, 0, len(msgs))
	for _, m := range msgs {
		keys = append(keys, messageKey(m))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	var parked []string
	if err := p.persist(ctx, "read parked keys", func() (err error) {
		parked, err = p.store.Parked(ctx, p.handler, keys)
		return err
	}); err != nil {
		return nil, err
	}
	l := &lot{p: p, parked: make(map[string]bool, len(parked))}
	for _, k := range parked {
		l.parked[k] = true
	}
	return l, nil
}

// holds reports whether msg goes through [lot.admit] rather than being
// handled in a batch: a release message, or an event of a parked key.
func (l *lot) holds(msg *message.Message) bool {
	if _, ok := msg.Metadata[HeaderReleaseFor]; ok {
		return true
	}
	return l.parked[messageKey(msg)]
}

// admit is [parking.admit] for an event the lot holds; other events are
// not taken.
func (l *lot) admit(ctx context.Context, msg *message.Message, apply func(*message.Message) error) (bool, error) {
	if !l.holds(msg) {
		return false, nil
	}
	_, release := msg.Metadata[HeaderReleaseFor]
	taken, err := l.p.admit(ctx, msg, apply)
	if err == nil && release {
		key := messageKey(msg)
		err = l.p.persist(ctx, "read parked keys", func() error {
			still, err := l.p.store.Parked(ctx, l.p.handler, []string{key})
			l.parked[key] = len(still) > 0
			return err
		})
	}
	return taken, err
}

// deadLetter is [parking.deadLetter], marking msg's key parked in the lot.
func (l *lot) deadLetter(ctx context.Context, msg *message.Message, cause error) error {
	if err := l.p.deadLetter(ctx, msg, cause); err != nil {
		return err
	}
	l.parked[messageKey(msg)] = true
	return nil
}

// MemoryDeadLetters is a [DeadLetters] store in memory: for the embedded
// mode of an application and for tests. What it holds is lost with the
// process, parked events included (they were acknowledged on the
// transport): with a durable transport such as Kafka use the PostgreSQL
// store.
//
// The zero value is not usable; create one with [NewMemoryDeadLetters].
type MemoryDeadLetters struct {
	mu      sync.Mutex
	letters map[memoryLetterKey]*memoryLetter
}

type memoryLetterKey struct{ handler, key string }

type memoryLetter struct {
	dl   DeadLetter
	held []ParkedEvent // the dead event first while it is held
}

// NewMemoryDeadLetters returns an empty in-memory store.
func NewMemoryDeadLetters() *MemoryDeadLetters {
	return &MemoryDeadLetters{letters: make(map[memoryLetterKey]*memoryLetter)}
}

var _ DeadLetters = (*MemoryDeadLetters)(nil)

// Add implements [DeadLetters].
func (m *MemoryDeadLetters) Add(_ context.Context, dl DeadLetter) error {
	if dl.Handler == "" || dl.Key == "" || dl.Event.ID == "" {
		return fmt.Errorf("eventbus: dead letters: need a handler, a key and an event ID, got %q, %q and %q", dl.Handler, dl.Key, dl.Event.ID)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	k := memoryLetterKey{dl.Handler, dl.Key}
	if l, ok := m.letters[k]; ok {
		l.append(dl.Event, now)
		return nil
	}
	if m.holds(dl.Handler, dl.Event.ID) {
		return nil
	}
	dl.DeadAt = cmp.Or(dl.DeadAt, now)
	dl.Parked, dl.Release, dl.ReleasedAt = 0, ReleaseNone, time.Time{}
	l := &memoryLetter{dl: dl}
	l.append(dl.Event, now)
	m.letters[k] = l
	return nil
}

func (l *memoryLetter) append(ev ParkedEvent, now time.Time) {
	if slices.ContainsFunc(l.held, func(h ParkedEvent) bool { return h.ID == ev.ID }) {
		return
	}
	ev = cloneEvent(ev)
	ev.At = cmp.Or(ev.At, now)
	l.held = append(l.held, ev)
}

// holds reports whether any dead letter of handler holds event id.
func (m *MemoryDeadLetters) holds(handler, id string) bool {
	for k, l := range m.letters {
		if k.handler == handler && slices.ContainsFunc(l.held, func(h ParkedEvent) bool { return h.ID == id }) {
			return true
		}
	}
	return false
}

// Park implements [DeadLetters].
func (m *MemoryDeadLetters) Park(_ context.Context, handler, key string, ev ParkedEvent) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.letters[memoryLetterKey{handler, key}]
	if !ok {
		return false, nil
	}
	l.append(ev, time.Now())
	return true, nil
}

// Parked implements [DeadLetters].
func (m *MemoryDeadLetters) Parked(_ context.Context, handler string, keys []string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, k := range keys {
		if _, ok := m.letters[memoryLetterKey{handler, k}]; ok && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out, nil
}

// view returns the dead letter of l as callers see it.
func (l *memoryLetter) view() DeadLetter {
	dl := l.dl
	dl.Parked = 0
	for _, h := range l.held {
		if h.ID == dl.Event.ID {
			dl.Event = cloneEvent(h)
		} else {
			dl.Parked++
		}
	}
	return dl
}

// List implements [DeadLetters].
func (m *MemoryDeadLetters) List(_ context.Context, handler string) ([]DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []DeadLetter
	for k, l := range m.letters {
		if handler == "" || k.handler == handler {
			out = append(out, l.view())
		}
	}
	slices.SortFunc(out, func(a, b DeadLetter) int {
		return cmp.Or(cmp.Compare(a.Handler, b.Handler), a.DeadAt.Compare(b.DeadAt), cmp.Compare(a.Key, b.Key))
	})
	return out, nil
}

// Get implements [DeadLetters].
func (m *MemoryDeadLetters) Get(_ context.Context, handler, key string) (DeadLetter, []ParkedEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.letters[memoryLetterKey{handler, key}]
	if !ok {
		return DeadLetter{}, nil, ErrNoDeadLetter
	}
	var parked []ParkedEvent
	for _, h := range l.held {
		if h.ID != l.dl.Event.ID {
			parked = append(parked, cloneEvent(h))
		}
	}
	return l.view(), parked, nil
}

// Release implements [DeadLetters].
func (m *MemoryDeadLetters) Release(_ context.Context, handler, key string, mode ReleaseMode) (DeadLetter, error) {
	if mode != ReleaseReplay && mode != ReleaseSkip {
		return DeadLetter{}, fmt.Errorf("eventbus: dead letters: release mode %q", mode)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.letters[memoryLetterKey{handler, key}]
	switch {
	case !ok:
		return DeadLetter{}, ErrNoDeadLetter
	case l.dl.Release == mode:
	case l.dl.Release != ReleaseNone:
		return DeadLetter{}, fmt.Errorf("%w: %s asked for", ErrReleasing, l.dl.Release)
	default:
		l.dl.Release, l.dl.ReleasedAt = mode, time.Now()
	}
	return l.view(), nil
}

// Next implements [DeadLetters].
func (m *MemoryDeadLetters) Next(_ context.Context, handler, key string) (ParkedEvent, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.letters[memoryLetterKey{handler, key}]
	if !ok || len(l.held) == 0 {
		return ParkedEvent{}, false, nil
	}
	return cloneEvent(l.held[0]), true, nil
}

// Remove implements [DeadLetters].
func (m *MemoryDeadLetters) Remove(_ context.Context, handler, key, eventID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memoryLetterKey{handler, key}
	l, ok := m.letters[k]
	if !ok {
		return nil
	}
	l.held = slices.DeleteFunc(l.held, func(h ParkedEvent) bool { return h.ID == eventID })
	if len(l.held) == 0 {
		delete(m.letters, k)
	}
	return nil
}

// Fail implements [DeadLetters].
func (m *MemoryDeadLetters) Fail(_ context.Context, handler, key, eventID, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.letters[memoryLetterKey{handler, key}]
	if !ok {
		return ErrNoDeadLetter
	}
	i := slices.IndexFunc(l.held, func(h ParkedEvent) bool { return h.ID == eventID })
	if i < 0 {
		return fmt.Errorf("eventbus: dead letters: %q key %q does not hold event %q", handler, key, eventID)
	}
	l.dl.Event = cloneEvent(l.held[i])
	l.dl.Reason, l.dl.DeadAt = reason, time.Now()
	l.dl.Release, l.dl.ReleasedAt = ReleaseNone, time.Time{}
	return nil
}

func cloneEvent(ev ParkedEvent) ParkedEvent {
	ev.Metadata = maps.Clone(ev.Metadata)
	ev.Payload = slices.Clone(ev.Payload)
	return ev
}
