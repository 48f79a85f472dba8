package dddkitcli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/outbox"
	"github.com/dddkit/dddkit/postgres"
)

// outboxStatsJSON is `outbox stats --json`.
type outboxStatsJSON struct {
	Pending          int64        `json:"pending"`
	Retrying         int64        `json:"retrying"`
	Failed           int64        `json:"failed"`
	Scheduled        int64        `json:"scheduled"`
	OldestPendingSec float64      `json:"oldest_pending_seconds"`
	Leaders          []leaderJSON `json:"relay_leaders"`
}

type leaderJSON struct {
	PID             int       `json:"pid"`
	Shards          []int     `json:"shards"`
	ShardCount      int       `json:"shard_count"`
	ApplicationName string    `json:"application_name"`
	ClientAddr      string    `json:"client_addr"`
	Since           time.Time `json:"since"`
}

func (r *run) outboxStats(ctx context.Context, args []string) error {
	pos, err := r.flags("outbox stats").parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("outbox stats takes no arguments")
	}
	ob, err := r.outbox(ctx)
	if err != nil {
		return err
	}
	st, err := ob.Stats(ctx)
	if err != nil {
		return err
	}
	leaders, err := ob.Leaders(ctx)
	if err != nil {
		return err
	}
	out := outboxStatsJSON{Pending: st.Pending, Retrying: st.Retrying, Failed: st.Failed, Scheduled: st.Scheduled,
		OldestPendingSec: st.OldestPending.Seconds(), Leaders: []leaderJSON{}}
	for _, l := range leaders {
		out.Leaders = append(out.Leaders, leaderJSON{PID: l.PID, Shards: append([]int{}, l.Shards...), ShardCount: l.ShardCount,
			ApplicationName: l.ApplicationName, ClientAddr: l.ClientAddr, Since: l.Since})
	}
	return r.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, "pending\t%d\t(%d retrying)\n", st.Pending, st.Retrying)
		fmt.Fprintf(w, "failed\t%d\n", st.Failed)
		fmt.Fprintf(w, "scheduled\t%d\n", st.Scheduled)
		fmt.Fprintf(w, "oldest pending\t%s\n", st.OldestPending.Round(time.Millisecond))
		if len(leaders) == 0 {
			fmt.Fprintf(w, "relay leader\tnone (no relay runs on this outbox)\n")
		}
		for _, l := range leaders {
			fmt.Fprintf(w, "relay leader\t%s\n", leaderText(l))
		}
	})
}

func leaderText(l postgres.Leader) string {
	s := fmt.Sprintf("pid %d, shards %s of %d", l.PID, shardList(l.Shards), l.ShardCount)
	if l.ApplicationName != "" {
		s += " " + strconv.Quote(l.ApplicationName)
	}
	if l.ClientAddr != "" {
		s += " from " + l.ClientAddr
	}
	return s + ", connected " + since(l.Since)
}

// shardList writes shards compactly: "0-3,7,9-10".
func shardList(shards []int) string {
	if len(shards) == 0 {
		return "none"
	}
	var b strings.Builder
	for i := 0; i < len(shards); {
		j := i
		for j+1 < len(shards) && shards[j+1] == shards[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", shards[i], shards[j])
		} else {
			fmt.Fprintf(&b, "%d", shards[i])
		}
		i = j + 1
	}
	return b.String()
}

// recordJSON is one outbox row in --json output.
type recordJSON struct {
	Seq           int64             `json:"seq"`
	Status        outbox.Status     `json:"status"`
	EventID       string            `json:"event_id"`
	EventName     string            `json:"event_name"`
	EventVersion  int               `json:"event_version"`
	AggregateType string            `json:"aggregate_type"`
	AggregateID   string            `json:"aggregate_id"`
	Version       int64             `json:"aggregate_version"`
	OccurredAt    time.Time         `json:"occurred_at"`
	CreatedAt     time.Time         `json:"created_at"`
	Attempts      int               `json:"attempts"`
	LastError     string            `json:"last_error,omitempty"`
	NextAttemptAt *time.Time        `json:"next_attempt_at,omitempty"`
	DueAt         *time.Time        `json:"due_at,omitempty"`
	ScheduleKey   string            `json:"schedule_key,omitempty"`
	PublishedAt   *time.Time        `json:"published_at,omitempty"`
	DiscardedBy   string            `json:"discarded_by,omitempty"`
	DiscardReason string            `json:"discard_reason,omitempty"`
	DiscardedAt   *time.Time        `json:"discarded_at,omitempty"`
	Headers       map[string]string `json:"headers,omitempty"`
	Payload       json.RawMessage   `json:"payload,omitempty"`
}

func toRecordJSON(rec outbox.Record, full bool) recordJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	j := recordJSON{
		Seq: rec.Seq, Status: rec.Status, EventID: rec.Event.ID, EventName: rec.Event.Name, EventVersion: rec.EventVersion,
		AggregateType: rec.Event.AggregateType, AggregateID: rec.Event.AggregateID, Version: rec.Event.Version,
		OccurredAt: rec.Event.OccurredAt, CreatedAt: rec.CreatedAt, Attempts: rec.Attempts, LastError: rec.LastError,
		NextAttemptAt: opt(rec.NextAttemptAt), DueAt: opt(rec.DueAt), ScheduleKey: rec.ScheduleKey,
		PublishedAt: opt(rec.PublishedAt), DiscardedBy: rec.DiscardedBy, DiscardReason: rec.DiscardReason,
		DiscardedAt: opt(rec.DiscardedAt),
	}
	if full {
		j.Headers = wire.MetadataHeaders(rec.Event.Metadata)
		if json.Valid(rec.RawPayload) {
			j.Payload = rec.RawPayload
		} else {
			b, _ := json.Marshal(string(rec.RawPayload))
			j.Payload = b
		}
	}
	return j
}

var statuses = []outbox.Status{outbox.StatusPending, outbox.StatusFailed, outbox.StatusScheduled,
	outbox.StatusPublished, outbox.StatusDiscarded}

func (r *run) outboxList(ctx context.Context, args []string) error {
	f := r.flags("outbox list")
	status := f.String("status", string(outbox.StatusFailed), "rows with this status")
	after := f.Int64("after", 0, "rows after this sequence number (paging)")
	limit := f.Int("limit", 100, "at most this many rows (0: all)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("outbox list takes no arguments (did you mean outbox show %s?)", pos[0])
	}
	if !slices.Contains(statuses, outbox.Status(*status)) {
		return usagef("--status %q: one of %v", *status, statuses)
	}
	ob, err := r.outbox(ctx)
	if err != nil {
		return err
	}
	recs, err := ob.List(ctx, outbox.Status(*status), *after, *limit)
	if err != nil {
		return err
	}
	out := make([]recordJSON, 0, len(recs))
	for _, rec := range recs {
		out = append(out, toRecordJSON(rec, false))
	}
	return r.emit(out, func(w io.Writer) {
		if len(recs) == 0 {
			fmt.Fprintf(w, "no %s rows\n", *status)
			return
		}
		fmt.Fprintln(w, "SEQ\tEVENT\tAGGREGATE\tVERSION\tATTEMPTS\tCREATED\tDETAIL")
		for _, rec := range recs {
			detail := rec.LastError
			switch rec.Status {
			case outbox.StatusScheduled:
				detail = "due " + stamp(rec.DueAt) + " key " + rec.ScheduleKey
			case outbox.StatusDiscarded:
				detail = "by " + rec.DiscardedBy + ": " + rec.DiscardReason
			case outbox.StatusPublished:
				detail = "published " + stamp(rec.PublishedAt)
			case outbox.StatusPending:
				if !rec.NextAttemptAt.IsZero() {
					detail = "retry at " + stamp(rec.NextAttemptAt) + ": " + rec.LastError
				}
			}
			fmt.Fprintf(w, "%d\t%s\t%s/%s\t%d\t%d\t%s\t%s\n", rec.Seq, rec.Event.Name, rec.Event.AggregateType,
				rec.Event.AggregateID, rec.Event.Version, rec.Attempts, since(rec.CreatedAt), oneLine(detail, 80))
		}
	})
}

func (r *run) outboxShow(ctx context.Context, args []string) error {
	pos, err := r.flags("outbox show").parse(args)
	if err != nil {
		return err
	}
	seqs, err := parseSeqs("outbox show", pos)
	if err != nil {
		return err
	}
	if len(seqs) != 1 {
		return usagef("outbox show takes one sequence number")
	}
	ob, err := r.outbox(ctx)
	if err != nil {
		return err
	}
	rec, err := ob.Get(ctx, seqs[0])
	if err != nil {
		return err
	}
	j := toRecordJSON(rec, true)
	return r.emit(j, func(w io.Writer) {
		fmt.Fprintf(w, "seq\t%d\n", rec.Seq)
		fmt.Fprintf(w, "status\t%s\n", rec.Status)
		fmt.Fprintf(w, "event\t%s (schema version %d) id %s\n", rec.Event.Name, rec.EventVersion, rec.Event.ID)
		fmt.Fprintf(w, "aggregate\t%s %s version %d\n", rec.Event.AggregateType, rec.Event.AggregateID, rec.Event.Version)
		fmt.Fprintf(w, "occurred\t%s\n", stamp(rec.Event.OccurredAt))
		fmt.Fprintf(w, "written\t%s\n", stamp(rec.CreatedAt))
		fmt.Fprintf(w, "attempts\t%d\n", rec.Attempts)
		if rec.LastError != "" {
			fmt.Fprintf(w, "last error\t%s\n", oneLine(rec.LastError, 500))
		}
		if !rec.NextAttemptAt.IsZero() {
			fmt.Fprintf(w, "next attempt\t%s\n", stamp(rec.NextAttemptAt))
		}
		if !rec.DueAt.IsZero() {
			fmt.Fprintf(w, "due\t%s (key %s)\n", stamp(rec.DueAt), rec.ScheduleKey)
		}
		if !rec.PublishedAt.IsZero() {
			fmt.Fprintf(w, "published\t%s\n", stamp(rec.PublishedAt))
		}
		if rec.Status == outbox.StatusDiscarded {
			fmt.Fprintf(w, "discarded\t%s by %s: %s\n", stamp(rec.DiscardedAt), rec.DiscardedBy, rec.DiscardReason)
		}
		keys := make([]string, 0, len(j.Headers))
		for k := range j.Headers {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "header %s\t%s\n", k, j.Headers[k])
		}
		fmt.Fprintf(w, "payload\t%s\n", payloadText(rec.RawPayload))
	})
}

// payloadText is a payload on one line: compact JSON, or quoted bytes.
func payloadText(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) == nil {
		return buf.String()
	}
	return strconv.Quote(string(b))
}

func parseSeqs(cmd string, args []string) ([]int64, error) {
	seqs := make([]int64, 0, len(args))
	for _, a := range args {
		for _, s := range strings.Split(a, ",") {
			if s == "" {
				continue
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n <= 0 {
				return nil, usagef("%s: %q is not a sequence number (the SEQ column of outbox list)", cmd, s)
			}
			seqs = append(seqs, n)
		}
	}
	return seqs, nil
}

// changedJSON is the --json output of retry and skip.
type changedJSON struct {
	Changed int64   `json:"changed"`
	Asked   []int64 `json:"asked,omitempty"`
}

func (r *run) outboxRetry(ctx context.Context, args []string) error {
	f := r.flags("outbox retry")
	all := f.Bool("all-failed", false, "retry every failed row")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	seqs, err := parseSeqs("outbox retry", pos)
	if err != nil {
		return err
	}
	if len(seqs) == 0 && !*all {
		return usagef("outbox retry: name the rows (SEQ...) or give --all-failed")
	}
	if len(seqs) > 0 && *all {
		return usagef("outbox retry: either SEQ... or --all-failed")
	}
	ob, err := r.outbox(ctx)
	if err != nil {
		return err
	}
	n, err := ob.Retry(ctx, seqs...)
	if err != nil {
		return err
	}
	return r.emit(changedJSON{Changed: n, Asked: seqs}, func(w io.Writer) {
		fmt.Fprintf(w, "%d failed rows back to pending; the relay publishes them next, in order\n", n)
		if len(seqs) > 0 && n < int64(len(seqs)) {
			fmt.Fprintf(w, "%d of the rows named were not failed (or do not exist) and were left alone\n", int64(len(seqs))-n)
		}
	})
}

func (r *run) outboxSkip(ctx context.Context, args []string) error {
	f := r.flags("outbox skip")
	reason := f.String("reason", "", "why the rows are given up on (required)")
	by := f.String("by", "", "who gives up on them (default $USER)")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	seqs, err := parseSeqs("outbox skip", pos)
	if err != nil {
		return err
	}
	if len(seqs) == 0 {
		return usagef("outbox skip: name the rows (SEQ...)")
	}
	if strings.TrimSpace(*reason) == "" {
		return usagef("outbox skip: say why with --reason")
	}
	who := cmpOr(*by, r.getenv("USER"))
	if strings.TrimSpace(who) == "" {
		return usagef("outbox skip: say who with --by (USER is not set)")
	}
	ob, err := r.outbox(ctx)
	if err != nil {
		return err
	}
	n, err := ob.Discard(ctx, who, *reason, seqs...)
	if err != nil {
		return err
	}
	return r.emit(changedJSON{Changed: n, Asked: seqs}, func(w io.Writer) {
		fmt.Fprintf(w, "%d failed rows discarded by %s; the later events of their aggregates flow again\n", n, who)
		if n < int64(len(seqs)) {
			fmt.Fprintf(w, "%d of the rows named were not failed (or do not exist) and were left alone\n", int64(len(seqs))-n)
		}
	})
}
