package dddkitcli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/IBM/sarama"
)

// partitionLag is one partition of one group's topic.
type partitionLag struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the group's committed offset; -1 when it has none.
	Committed int64 `json:"committed"`
	// HighWater is the partition's high-water mark (the next offset).
	HighWater int64 `json:"high_water"`
	// Lag is HighWater-Committed, or, with no commit, the records the
	// partition holds (HighWater minus its oldest offset).
	Lag int64 `json:"lag"`
}

// groupLag is the lag of one consumer group.
type groupLag struct {
	Group      string         `json:"group"`
	State      string         `json:"state"`
	Members    int            `json:"members"`
	Lag        int64          `json:"lag"`
	Partitions []partitionLag `json:"partitions"`
}

// lags measures the lag of the named groups, or of every group the
// cluster knows when names is empty, sorted by group.
func (r *run) lags(names []string) ([]groupLag, error) {
	admin, err := r.kafkaAdmin()
	if err != nil {
		return nil, err
	}
	client, _ := r.kafkaClient()
	if len(names) == 0 {
		all, err := admin.ListConsumerGroups()
		if err != nil {
			return nil, fmt.Errorf("list consumer groups: %w", err)
		}
		for g := range all {
			names = append(names, g)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	descs, err := admin.DescribeConsumerGroups(names)
	if err != nil {
		return nil, fmt.Errorf("describe consumer groups: %w", err)
	}
	state := map[string]*sarama.GroupDescription{}
	for _, d := range descs {
		state[d.GroupId] = d
	}
	out := make([]groupLag, 0, len(names))
	for _, g := range names {
		gl := groupLag{Group: g, State: "Dead", Partitions: []partitionLag{}}
		if d := state[g]; d != nil {
			gl.State, gl.Members = cmpOr(d.State, "Unknown"), len(d.Members)
		}
		offs, err := admin.ListConsumerGroupOffsets(g, nil)
		if err != nil {
			return nil, fmt.Errorf("offsets of group %s: %w", g, err)
		}
		if offs.Err != sarama.ErrNoError {
			return nil, fmt.Errorf("offsets of group %s: %w", g, offs.Err)
		}
		topics := make([]string, 0, len(offs.Blocks))
		for t := range offs.Blocks {
			topics = append(topics, t)
		}
		slices.Sort(topics)
		for _, t := range topics {
			parts := make([]int32, 0, len(offs.Blocks[t]))
			for p := range offs.Blocks[t] {
				parts = append(parts, p)
			}
			slices.Sort(parts)
			for _, p := range parts {
				b := offs.Blocks[t][p]
				if b == nil || b.Err != sarama.ErrNoError {
					continue
				}
				hw, err := client.GetOffset(t, p, sarama.OffsetNewest)
				if err != nil {
					return nil, fmt.Errorf("high-water mark of %s/%d: %w", t, p, err)
				}
				pl := partitionLag{Topic: t, Partition: p, Committed: b.Offset, HighWater: hw}
				if b.Offset >= 0 {
					pl.Lag = max(hw-b.Offset, 0)
				} else {
					oldest, err := client.GetOffset(t, p, sarama.OffsetOldest)
					if err != nil {
						return nil, fmt.Errorf("oldest offset of %s/%d: %w", t, p, err)
					}
					pl.Lag = max(hw-oldest, 0)
				}
				gl.Lag += pl.Lag
				gl.Partitions = append(gl.Partitions, pl)
			}
		}
		out = append(out, gl)
	}
	return out, nil
}

func (r *run) consumersLag(_ context.Context, args []string) error {
	f := r.flags("consumers lag")
	var groups []string
	f.Func("group", "only this consumer group (repeatable)", func(v string) error {
		groups = append(groups, v)
		return nil
	})
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	groups = append(groups, pos...) // `consumers lag GROUP...` too
	lags, err := r.lags(groups)
	if err != nil {
		return err
	}
	return r.emit(lags, func(w io.Writer) {
		if len(lags) == 0 {
			fmt.Fprintln(w, "no consumer groups")
			return
		}
		fmt.Fprintln(w, "GROUP\tSTATE\tMEMBERS\tTOPIC\tPARTITION\tCOMMITTED\tHIGH-WATER\tLAG")
		for _, g := range lags {
			if len(g.Partitions) == 0 {
				fmt.Fprintf(w, "%s\t%s\t%d\t-\t-\t-\t-\t-\n", g.Group, g.State, g.Members)
			}
			for _, p := range g.Partitions {
				committed := "-"
				if p.Committed >= 0 {
					committed = fmt.Sprint(p.Committed)
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%s\t%d\t%d\n", g.Group, g.State, g.Members, p.Topic, p.Partition,
					committed, p.HighWater, p.Lag)
			}
		}
		var total []string
		for _, g := range lags {
			total = append(total, fmt.Sprintf("%s %d", g.Group, g.Lag))
		}
		fmt.Fprintf(w, "total lag: %s\n", strings.Join(total, ", "))
	})
}
