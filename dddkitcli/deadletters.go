package dddkitcli

// The deadletters commands. They read and act on the consumers' dead
// letters where the consumers keep them: the eventbus.DeadLetters store
// in PostgreSQL (postgres.NewDeadLetters, in the tables --schema and
// --table name). A dead letter is an event a consumer (handler) gave up
// on, with the key (aggregate) it holds back: the later events of that
// key for that handler are parked behind it, in order. Releasing it goes
// through eventbus.ReplayDeadLetter or eventbus.SkipDeadLetter, which
// record the release in the store and publish a release message to the
// key's partition, so the consumer releases the key in order.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/kafka"
	"github.com/dddkit/dddkit/postgres"
)

// deadLetterJSON is one dead letter in --json output.
type deadLetterJSON struct {
	Handler   string    `json:"handler"`
	Key       string    `json:"key"`
	Topic     string    `json:"topic"`
	EventName string    `json:"event_name"`
	EventID   string    `json:"event_id"`
	Reason    string    `json:"reason"`
	DeadAt    time.Time `json:"dead_at"`
	// Parked is the number of the key's events parked behind it.
	Parked int `json:"parked"`
	// Release is the release asked for and not yet done by the consumer
	// ("replay" or "skip"), empty without one.
	Release    eventbus.ReleaseMode `json:"release,omitempty"`
	ReleasedAt *time.Time           `json:"released_at,omitempty"`
}

func toDeadLetterJSON(dl eventbus.DeadLetter) deadLetterJSON {
	d := deadLetterJSON{Handler: dl.Handler, Key: dl.Key, Topic: dl.Topic, EventName: dl.Event.Name, EventID: dl.Event.ID,
		Reason: dl.Reason, DeadAt: dl.DeadAt, Parked: dl.Parked, Release: dl.Release}
	if !dl.ReleasedAt.IsZero() {
		at := dl.ReleasedAt
		d.ReleasedAt = &at
	}
	return d
}

// eventJSON is a held event (the dead one or a parked one) with its
// headers and payload, in --json output.
type eventJSON struct {
	EventID   string            `json:"event_id"`
	EventName string            `json:"event_name"`
	At        time.Time         `json:"at"` // when the store got it
	Headers   map[string]string `json:"headers"`
	Payload   json.RawMessage   `json:"payload"`
}

func toEventJSON(ev eventbus.ParkedEvent) eventJSON {
	h := ev.Metadata
	if h == nil {
		h = map[string]string{}
	}
	return eventJSON{EventID: ev.ID, EventName: ev.Name, At: ev.At, Headers: h, Payload: payloadJSON(ev.Payload)}
}

// payloadJSON is b itself when it is JSON, else b as a JSON string (a
// payload that did not decode may be anything).
func payloadJSON(b []byte) json.RawMessage {
	if json.Valid(b) {
		return b
	}
	s, _ := json.Marshal(string(b))
	return s
}

// deadLetterDetailJSON is `deadletters show` in --json output.
type deadLetterDetailJSON struct {
	deadLetterJSON
	Event        eventJSON   `json:"event"`
	ParkedEvents []eventJSON `json:"parked_events"`
}

// releasedJSON is `deadletters replay|skip` in --json output.
type releasedJSON struct {
	Handler string               `json:"handler"`
	Key     string               `json:"key"`
	Mode    eventbus.ReleaseMode `json:"mode"`
	Topic   string               `json:"topic"`
	EventID string               `json:"event_id"`
	Parked  int                  `json:"parked"`
	By      string               `json:"by,omitempty"`
	Reason  string               `json:"reason,omitempty"`
}

// deadLetters opens the dead-letter store in the run's tables.
func (r *run) deadLetters(ctx context.Context) (*postgres.DeadLetters, error) {
	pool, err := r.db(ctx)
	if err != nil {
		return nil, err
	}
	return postgres.NewDeadLetters(pool, &postgres.DeadLettersConfig{Tables: r.tables})
}

// publisher returns the producer of a kafka.Client on the run's brokers,
// the one the consumers' release messages go through.
func (r *run) publisher() (message.Publisher, error) {
	if r.client != nil {
		return r.client.Publisher(), nil
	}
	if len(r.brokers) == 0 {
		return nil, usagef("no Kafka: set %s or --brokers (a release is a message to the consumer)", EnvKafkaBrokers)
	}
	c, err := kafka.NewClient(&kafka.Config{
		Brokers:  r.brokers,
		ClientID: "dddkit-cli",
		Version:  r.kafkaVersion,
		Logger:   slog.New(slog.DiscardHandler),
		Configure: func(c *sarama.Config) {
			c.Net.DialTimeout = 10 * time.Second
			c.Metadata.Retry.Max = 1
		},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Kafka %s: %w", strings.Join(r.brokers, ","), err)
	}
	r.client = c
	return c.Publisher(), nil
}

func (r *run) deadLettersList(ctx context.Context, args []string) error {
	f := r.flags("deadletters list")
	handler := f.String("handler", "", "only this handler's dead letters")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("deadletters list takes no arguments (did you mean deadletters show HANDLER KEY?)")
	}
	store, err := r.deadLetters(ctx)
	if err != nil {
		return err
	}
	dls, err := store.List(ctx, *handler)
	if err != nil {
		return err
	}
	out := make([]deadLetterJSON, 0, len(dls))
	for _, dl := range dls {
		out = append(out, toDeadLetterJSON(dl))
	}
	return r.emit(out, func(w io.Writer) {
		if len(out) == 0 {
			fmt.Fprintln(w, "no dead letters")
			return
		}
		fmt.Fprintln(w, "HANDLER\tKEY\tTOPIC\tEVENT\tEVENT ID\tDEAD AT\tPARKED\tRELEASE\tREASON")
		for _, d := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Handler, d.Key, d.Topic, cmpOr(d.EventName, "-"),
				d.EventID, stamp(d.DeadAt), d.Parked, releaseText(d), oneLine(d.Reason, 80))
		}
	})
}

// releaseText says which release is pending: "-", or "replay asked 3s ago".
func releaseText(d deadLetterJSON) string {
	if d.Release == eventbus.ReleaseNone {
		return "-"
	}
	at := time.Time{}
	if d.ReleasedAt != nil {
		at = *d.ReleasedAt
	}
	return fmt.Sprintf("%s asked %s", d.Release, since(at))
}

// handlerKey reads the HANDLER KEY arguments of command.
func handlerKey(command string, pos []string) (handler, key string, err error) {
	if len(pos) != 2 || pos[0] == "" || pos[1] == "" {
		return "", "", usagef("%s takes HANDLER KEY (the first two columns of deadletters list)", command)
	}
	return pos[0], pos[1], nil
}

// noDeadLetter explains ErrNoDeadLetter.
func noDeadLetter(err error, handler, key string) error {
	if errors.Is(err, eventbus.ErrNoDeadLetter) {
		return fmt.Errorf("handler %q has no dead letter for key %q (released already, or a typo? dddkit deadletters list shows them): %w",
			handler, key, err)
	}
	return err
}

func (r *run) deadLettersShow(ctx context.Context, args []string) error {
	f := r.flags("deadletters show")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	handler, key, err := handlerKey("deadletters show", pos)
	if err != nil {
		return err
	}
	store, err := r.deadLetters(ctx)
	if err != nil {
		return err
	}
	dl, parked, err := store.Get(ctx, handler, key)
	if err != nil {
		return noDeadLetter(err, handler, key)
	}
	d := deadLetterDetailJSON{deadLetterJSON: toDeadLetterJSON(dl), Event: toEventJSON(dl.Event), ParkedEvents: []eventJSON{}}
	for _, ev := range parked {
		d.ParkedEvents = append(d.ParkedEvents, toEventJSON(ev))
	}
	return r.emit(d, func(w io.Writer) {
		fmt.Fprintf(w, "handler\t%s\n", d.Handler)
		fmt.Fprintf(w, "key\t%s\n", d.Key)
		fmt.Fprintf(w, "topic\t%s\n", d.Topic)
		fmt.Fprintf(w, "dead-lettered\t%s\n", stamp(d.DeadAt))
		fmt.Fprintf(w, "reason\t%s\n", oneLine(d.Reason, 1000))
		fmt.Fprintf(w, "release\t%s\n", releaseText(d.deadLetterJSON))
		fmt.Fprintf(w, "event\t%s\n", cmpOr(d.EventName, "-"))
		fmt.Fprintf(w, "event id\t%s\n", d.EventID)
		for _, k := range slices.Sorted(maps.Keys(d.Event.Headers)) {
			fmt.Fprintf(w, "header %s\t%s\n", k, d.Event.Headers[k])
		}
		fmt.Fprintf(w, "payload\t%s\n", payloadText(dl.Event.Payload))
		if len(d.ParkedEvents) == 0 {
			fmt.Fprintf(w, "parked\tnone\n")
			return
		}
		fmt.Fprintf(w, "parked\t%d events, handled in this order after a release:\n", len(d.ParkedEvents))
		for i, ev := range d.ParkedEvents {
			fmt.Fprintf(w, "  %d\t%s %s (parked %s)\n", i+1, cmpOr(ev.EventName, "-"), ev.EventID, stamp(ev.At))
		}
	})
}

func (r *run) deadLettersReplay(ctx context.Context, args []string) error {
	f := r.flags("deadletters replay")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	handler, key, err := handlerKey("deadletters replay", pos)
	if err != nil {
		return err
	}
	return r.release(ctx, handler, key, eventbus.ReleaseReplay, "", "")
}

func (r *run) deadLettersSkip(ctx context.Context, args []string) error {
	f := r.flags("deadletters skip")
	reason := f.String("reason", "", "why the dead event is given up on (required)")
	by := f.String("by", "", "who gives up on it (default $USER)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	handler, key, err := handlerKey("deadletters skip", pos)
	if err != nil {
		return err
	}
	if strings.TrimSpace(*reason) == "" {
		return usagef("deadletters skip: say why with --reason")
	}
	who := cmpOr(*by, r.getenv("USER"))
	if strings.TrimSpace(who) == "" {
		return usagef("deadletters skip: say who with --by (USER is not set)")
	}
	return r.release(ctx, handler, key, eventbus.ReleaseSkip, who, *reason)
}

// release asks for the release of handler's dead letter for key with
// eventbus.ReplayDeadLetter or eventbus.SkipDeadLetter.
func (r *run) release(ctx context.Context, handler, key string, mode eventbus.ReleaseMode, who, why string) error {
	pub, err := r.publisher()
	if err != nil {
		return err
	}
	store, err := r.deadLetters(ctx)
	if err != nil {
		return err
	}
	dl, _, err := store.Get(ctx, handler, key)
	if err != nil {
		return noDeadLetter(err, handler, key)
	}
	fn := eventbus.ReplayDeadLetter
	if mode == eventbus.ReleaseSkip {
		fn = eventbus.SkipDeadLetter
	}
	if err := fn(ctx, store, pub, handler, key); err != nil {
		switch {
		case errors.Is(err, eventbus.ErrNoDeadLetter):
			return noDeadLetter(err, handler, key)
		case errors.Is(err, eventbus.ErrReleasing):
			return fmt.Errorf("%w (a release cannot change its mind: wait for the consumer to do it; dddkit deadletters show %s %s)",
				err, handler, key)
		}
		return fmt.Errorf("%w (when the release was recorded but its message not published, running the command again publishes it)", err)
	}
	out := releasedJSON{Handler: handler, Key: key, Mode: mode, Topic: dl.Topic, EventID: dl.Event.ID, Parked: dl.Parked,
		By: who, Reason: why}
	return r.emit(out, func(w io.Writer) {
		ev := cmpOr(dl.Event.Name, "event") + " " + dl.Event.ID
		switch mode {
		case eventbus.ReleaseSkip:
			fmt.Fprintf(w, "%s skipped by %s: %s\n", ev, who, why)
			fmt.Fprintf(w, "%q drops it and handles the %d events of key %q parked behind it, in order,\n", handler, dl.Parked, key)
		default:
			fmt.Fprintf(w, "%s replayed\n", ev)
			fmt.Fprintf(w, "%q handles it again, then the %d events of key %q parked behind it, in order,\n", handler, dl.Parked, key)
		}
		fmt.Fprintf(w, "when the release message published to %s reaches it (dddkit deadletters list shows the dead letter until then)\n", dl.Topic)
	})
}
