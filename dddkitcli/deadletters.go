package dddkitcli

// The deadletters commands. Self-contained: everything they know about
// dead letters is in this file.
//
// A dead letter is the consumed record as it was (key, value, headers:
// the event's CloudEvents attributes) plus the headers the router adds
// (watermill's poison-queue keys, eventbus.HeaderDeadLetter*): the
// reason, the topic it was consumed from, the handler that gave up (and
// watermill's subscriber name). Replaying one produces the key, the
// value and the headers without those to the original topic, with the murmur2 partitioner the
// relay uses, so the event lands on its aggregate's partition again.
//
// `replay --all` remembers how far it replayed each partition as the
// committed offset of a consumer group of its own (--replay-group), so
// running it again replays only what was dead-lettered since; replaying
// by ID does not move that mark.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/dddkit/dddkit/eventbus"
)

// DefaultReplayGroup is the consumer group whose committed offsets mark
// how far `deadletters replay --all` has replayed each dead-letter
// partition.
const DefaultReplayGroup = "dddkit.deadletters.replay"

// deadLetter is one dead-letter record.
type deadLetter struct {
	ID        string            `json:"id"` // topic/partition/offset
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Timestamp time.Time         `json:"timestamp"`
	Key       string            `json:"key"`
	Original  string            `json:"original_topic"`
	Handler   string            `json:"handler"`
	Reason    string            `json:"reason"`
	EventName string            `json:"event_name"`
	EventID   string            `json:"event_id"`
	Replayed  bool              `json:"replayed"` // below the replay group's mark
	Headers   map[string]string `json:"headers,omitempty"`
	Value     string            `json:"value,omitempty"`

	rec *sarama.ConsumerMessage
}

// deadLetterHeaders are the headers the router adds (watermill's poison
// queue also names the subscriber); a replay drops them.
var deadLetterHeaders = []string{eventbus.HeaderDeadLetterReason, eventbus.HeaderDeadLetterTopic,
	eventbus.HeaderDeadLetterHandler, middleware.PoisonedSubscriberKey}

func newDeadLetter(m *sarama.ConsumerMessage, mark int64, full bool) deadLetter {
	h := make(map[string]string, len(m.Headers))
	for _, rh := range m.Headers {
		if rh != nil {
			h[string(rh.Key)] = string(rh.Value)
		}
	}
	d := deadLetter{
		ID: fmt.Sprintf("%s/%d/%d", m.Topic, m.Partition, m.Offset), Topic: m.Topic, Partition: m.Partition,
		Offset: m.Offset, Timestamp: m.Timestamp, Key: string(m.Key),
		Original: h[eventbus.HeaderDeadLetterTopic], Handler: h[eventbus.HeaderDeadLetterHandler],
		Reason: h[eventbus.HeaderDeadLetterReason], EventName: h[eventbus.HeaderEventName],
		EventID: h[eventbus.HeaderEventID], Replayed: mark >= 0 && m.Offset < mark, rec: m,
	}
	if full {
		d.Headers, d.Value = h, string(m.Value)
	}
	return d
}

// parseDeadLetterID splits topic/partition/offset.
func parseDeadLetterID(id string) (topic string, partition int32, offset int64, err error) {
	i := strings.LastIndexByte(id, '/')
	j := -1
	if i > 0 {
		j = strings.LastIndexByte(id[:i], '/')
	}
	if j <= 0 {
		return "", 0, 0, usagef("dead letter %q: want TOPIC/PARTITION/OFFSET (the ID column of deadletters list)", id)
	}
	p, err1 := strconv.ParseInt(id[j+1:i], 10, 32)
	o, err2 := strconv.ParseInt(id[i+1:], 10, 64)
	if err1 != nil || err2 != nil || p < 0 || o < 0 {
		return "", 0, 0, usagef("dead letter %q: want TOPIC/PARTITION/OFFSET (the ID column of deadletters list)", id)
	}
	return id[:j], int32(p), o, nil
}

// readPartition returns the records of topic/partition from offset from
// up to (not including) to.
func readPartition(consumer sarama.Consumer, topic string, partition int32, from, to int64) ([]*sarama.ConsumerMessage, error) {
	if from >= to {
		return nil, nil
	}
	pc, err := consumer.ConsumePartition(topic, partition, from)
	if err != nil {
		return nil, fmt.Errorf("read %s/%d from %d: %w", topic, partition, from, err)
	}
	defer pc.Close()
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	var out []*sarama.ConsumerMessage
	for {
		select {
		case m := <-pc.Messages():
			out = append(out, m)
			if m.Offset >= to-1 {
				return out, nil
			}
		case err := <-pc.Errors():
			return nil, fmt.Errorf("read %s/%d: %w", topic, partition, err)
		case <-timeout.C:
			return nil, fmt.Errorf("read %s/%d: offsets %d to %d not read within 30s", topic, partition, from, to)
		}
	}
}

// replayMarks returns the replay group's committed offset per partition
// of topic (-1: none).
func (r *run) replayMarks(group, topic string, parts []int32) (map[int32]int64, error) {
	admin, err := r.kafkaAdmin()
	if err != nil {
		return nil, err
	}
	offs, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return nil, fmt.Errorf("replay marks of %s: %w", topic, err)
	}
	marks := make(map[int32]int64, len(parts))
	for _, p := range parts {
		marks[p] = -1
		if b := offs.GetBlock(topic, p); b != nil && b.Err == sarama.ErrNoError {
			marks[p] = b.Offset
		}
	}
	return marks, nil
}

// readDeadLetters reads the newest limit records of each partition of
// the topics (limit <= 0: all), or, with unreplayed, the records from
// the replay group's mark on.
func (r *run) readDeadLetters(topics []string, group string, limit int64, unreplayed, full bool) ([]deadLetter, error) {
	client, err := r.kafkaClient()
	if err != nil {
		return nil, err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return nil, fmt.Errorf("kafka consumer: %w", err)
	}
	defer consumer.Close()
	var out []deadLetter
	for _, topic := range topics {
		parts, err := client.Partitions(topic)
		if err != nil {
			return nil, fmt.Errorf("dead-letter topic %s: %w", topic, err)
		}
		marks, err := r.replayMarks(group, topic, parts)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			oldest, err := client.GetOffset(topic, p, sarama.OffsetOldest)
			if err != nil {
				return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p, err)
			}
			hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
			if err != nil {
				return nil, fmt.Errorf("offsets of %s/%d: %w", topic, p, err)
			}
			from := oldest
			if unreplayed {
				from = max(oldest, marks[p])
			} else if limit > 0 {
				from = max(oldest, hw-limit)
			}
			recs, err := readPartition(consumer, topic, p, from, hw)
			if err != nil {
				return nil, err
			}
			for _, m := range recs {
				out = append(out, newDeadLetter(m, marks[p], full))
			}
		}
	}
	return out, nil
}

// deadLetterFlags are the flags every deadletters command has.
func (r *run) deadLetterFlags(name string) (*flags, *[]string, *string) {
	f := r.flags(name)
	topics := &[]string{}
	f.Func("topic", "dead-letter topic (repeatable; default "+eventbus.DefaultDeadLetterTopic+")", func(v string) error {
		*topics = append(*topics, v)
		return nil
	})
	group := f.String("replay-group", DefaultReplayGroup, "consumer group that marks what replay --all has replayed")
	return f, topics, group
}

func defaultTopics(topics []string) []string {
	if len(topics) == 0 {
		return []string{eventbus.DefaultDeadLetterTopic}
	}
	return topics
}

func (r *run) deadLettersList(_ context.Context, args []string) error {
	f, topics, group := r.deadLetterFlags("deadletters list")
	limit := f.Int64("limit", 100, "the newest N of each partition (0: all)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("deadletters list takes no arguments (did you mean deadletters show %s?)", pos[0])
	}
	dls, err := r.readDeadLetters(defaultTopics(*topics), *group, *limit, false, false)
	if err != nil {
		return err
	}
	if dls == nil {
		dls = []deadLetter{}
	}
	return r.emit(dls, func(w io.Writer) {
		if len(dls) == 0 {
			fmt.Fprintln(w, "no dead letters")
			return
		}
		fmt.Fprintln(w, "ID\tEVENT\tKEY\tFROM\tHANDLER\tREPLAYED\tREASON")
		for _, d := range dls {
			replayed := "no"
			if d.Replayed {
				replayed = "yes"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, cmpOr(d.EventName, "-"), d.Key, cmpOr(d.Original, "-"),
				cmpOr(d.Handler, "-"), replayed, oneLine(d.Reason, 80))
		}
	})
}

// readOne reads the dead letter with the given ID.
func (r *run) readOne(id, group string) (deadLetter, error) {
	topic, p, off, err := parseDeadLetterID(id)
	if err != nil {
		return deadLetter{}, err
	}
	client, err := r.kafkaClient()
	if err != nil {
		return deadLetter{}, err
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return deadLetter{}, fmt.Errorf("kafka consumer: %w", err)
	}
	defer consumer.Close()
	hw, err := client.GetOffset(topic, p, sarama.OffsetNewest)
	if err != nil {
		return deadLetter{}, fmt.Errorf("dead letter %s: %w", id, err)
	}
	if off >= hw {
		return deadLetter{}, fmt.Errorf("dead letter %s: no such record (the partition ends at offset %d)", id, hw)
	}
	recs, err := readPartition(consumer, topic, p, off, off+1)
	if err != nil {
		return deadLetter{}, fmt.Errorf("dead letter %s: %w", id, err)
	}
	if len(recs) == 0 || recs[0].Offset != off {
		return deadLetter{}, fmt.Errorf("dead letter %s: no such record (deleted by retention or compacted)", id)
	}
	marks, err := r.replayMarks(group, topic, []int32{p})
	if err != nil {
		return deadLetter{}, err
	}
	return newDeadLetter(recs[0], marks[p], true), nil
}

func (r *run) deadLettersShow(_ context.Context, args []string) error {
	f, _, group := r.deadLetterFlags("deadletters show")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("deadletters show takes one ID (TOPIC/PARTITION/OFFSET)")
	}
	d, err := r.readOne(pos[0], *group)
	if err != nil {
		return err
	}
	return r.emit(d, func(w io.Writer) {
		fmt.Fprintf(w, "id\t%s\n", d.ID)
		fmt.Fprintf(w, "dead-lettered\t%s\n", stamp(d.Timestamp))
		fmt.Fprintf(w, "original topic\t%s\n", cmpOr(d.Original, "- (unknown: not replayable)"))
		fmt.Fprintf(w, "handler\t%s\n", cmpOr(d.Handler, "-"))
		fmt.Fprintf(w, "reason\t%s\n", oneLine(d.Reason, 1000))
		fmt.Fprintf(w, "key\t%s\n", d.Key)
		fmt.Fprintf(w, "replayed\t%t\n", d.Replayed)
		keys := make([]string, 0, len(d.Headers))
		for k := range d.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "header %s\t%s\n", k, d.Headers[k])
		}
		fmt.Fprintf(w, "value\t%s\n", payloadText([]byte(d.Value)))
	})
}

type replayedJSON struct {
	ID      string `json:"id"`
	EventID string `json:"event_id"`
	To      string `json:"to"`
	// Partition and Offset are where the replayed record landed.
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
}

// replay produces d to its original topic: the same key, value and
// headers (without the dead-letter ones) and timestamp.
func replay(producer sarama.SyncProducer, d deadLetter) (replayedJSON, error) {
	if d.Original == "" {
		return replayedJSON{}, fmt.Errorf("dead letter %s has no %s header: its original topic is unknown", d.ID, eventbus.HeaderDeadLetterTopic)
	}
	m := d.rec
	headers := make([]sarama.RecordHeader, 0, len(m.Headers))
	for _, h := range m.Headers {
		if h != nil && !slices.Contains(deadLetterHeaders, string(h.Key)) {
			headers = append(headers, sarama.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
	pm := &sarama.ProducerMessage{Topic: d.Original, Value: sarama.ByteEncoder(m.Value), Headers: headers}
	if m.Key != nil {
		pm.Key = sarama.ByteEncoder(m.Key)
	}
	if !m.Timestamp.IsZero() && m.Timestamp.Before(time.Now()) {
		pm.Timestamp = m.Timestamp
	}
	p, off, err := producer.SendMessage(pm)
	if err != nil {
		return replayedJSON{}, fmt.Errorf("replay %s to %s: %w", d.ID, d.Original, err)
	}
	return replayedJSON{ID: d.ID, EventID: d.EventID, To: d.Original, Partition: p, Offset: off}, nil
}

func (r *run) deadLettersReplay(_ context.Context, args []string) error {
	f, topics, group := r.deadLetterFlags("deadletters replay")
	all := f.Bool("all", false, "replay every dead letter not replayed by an earlier --all")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if (len(pos) == 0) == !*all {
		return usagef("deadletters replay: name the dead letters (ID...) or give --all")
	}
	var dls []deadLetter
	if *all {
		dls, err = r.readDeadLetters(defaultTopics(*topics), *group, 0, true, false)
		if err != nil {
			return err
		}
	} else {
		for _, id := range pos {
			d, err := r.readOne(id, *group)
			if err != nil {
				return err
			}
			dls = append(dls, d)
		}
	}
	client, err := r.kafkaClient()
	if err != nil {
		return err
	}
	var out []replayedJSON
	var errs []error
	if len(dls) > 0 {
		producer, err := sarama.NewSyncProducerFromClient(client)
		if err != nil {
			return fmt.Errorf("kafka producer: %w", err)
		}
		defer producer.Close()
		marks := map[string]map[int32]int64{} // topic → partition → next offset, for --all
		for _, d := range dls {
			res, err := replay(producer, d)
			if err != nil {
				errs = append(errs, err)
				break // later dead letters of the key must not overtake this one
			}
			out = append(out, res)
			if marks[d.Topic] == nil {
				marks[d.Topic] = map[int32]int64{}
			}
			marks[d.Topic][d.Partition] = d.Offset + 1
		}
		if *all {
			if err := commitMarks(client, *group, marks); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if out == nil {
		out = []replayedJSON{}
	}
	if err := r.emit(out, func(w io.Writer) {
		for _, o := range out {
			fmt.Fprintf(w, "replayed %s (event %s) to %s/%d at offset %d\n", o.ID, cmpOr(o.EventID, "-"), o.To, o.Partition, o.Offset)
		}
		fmt.Fprintf(w, "%d dead letters replayed\n", len(out))
	}); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// commitMarks records, as the replay group's committed offsets, how far
// replay --all got on each partition.
func commitMarks(client sarama.Client, group string, marks map[string]map[int32]int64) error {
	if len(marks) == 0 {
		return nil
	}
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		return fmt.Errorf("replay marks: %w", err)
	}
	var errs []error
	var poms []sarama.PartitionOffsetManager
	for topic, parts := range marks {
		for p, next := range parts {
			pom, err := om.ManagePartition(topic, p)
			if err != nil {
				errs = append(errs, fmt.Errorf("replay mark of %s/%d: %w", topic, p, err))
				continue
			}
			pom.MarkOffset(next, "")
			poms = append(poms, pom)
		}
	}
	om.Commit()
	for _, pom := range poms {
		_ = pom.Close()
	}
	if err := om.Close(); err != nil {
		errs = append(errs, fmt.Errorf("replay marks: %w", err))
	}
	return errors.Join(errs...)
}
