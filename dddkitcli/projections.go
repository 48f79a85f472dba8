package dddkitcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/projection"
)

type projectionJSON struct {
	Name          string     `json:"name"`
	Position      int64      `json:"position"`
	Head          int64      `json:"head"`
	LagEvents     int64      `json:"lag_events"`
	LagSeconds    *float64   `json:"lag_seconds,omitempty"` // with the service's projections only
	Applied       int64      `json:"applied"`
	Rebuilding    bool       `json:"rebuilding"`
	RebuildTarget int64      `json:"rebuild_target,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	UpdatedAt     time.Time  `json:"updated_at"`
	Linked        bool       `json:"linked"` // the command has the projection's handlers
}

// projectionStatuses returns the status of every projection: from the
// linked runners (with the time lag), and from the checkpoints table
// for the others (the lag in stream positions: an upper bound).
func (r *run) projectionStatuses(ctx context.Context) ([]projectionJSON, error) {
	pool, err := r.db(ctx)
	if err != nil {
		return nil, err
	}
	store, err := postgres.NewProjectionStore(pool, &postgres.ProjectionStoreConfig{Tables: r.tables})
	if err != nil {
		return nil, err
	}
	stream, err := postgres.NewEventStream(pool, eventbus.NewRegistry(nil), &postgres.EventStreamConfig{Tables: r.tables})
	if err != nil {
		return nil, err
	}
	names, err := store.Names(ctx)
	if err != nil {
		return nil, err
	}
	head, err := stream.Head(ctx)
	if err != nil {
		return nil, err
	}
	linked := map[string]projection.Status{}
	for _, runner := range r.cmd.Projections {
		st, err := runner.Status(ctx)
		if err != nil {
			return nil, err
		}
		linked[st.Name] = st
		names = append(names, st.Name)
	}
	seen := map[string]bool{}
	var out []projectionJSON
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		var j projectionJSON
		if st, ok := linked[name]; ok {
			lag := st.Lag.Seconds()
			j = checkpointJSON(name, st.Checkpoint, st.Head, st.LagEvents)
			j.LagSeconds, j.Linked = &lag, true
		} else {
			cp, err := store.Load(ctx, name)
			if err != nil {
				return nil, err
			}
			j = checkpointJSON(name, cp, head, max(head-cp.Position, 0))
		}
		out = append(out, j)
	}
	return out, nil
}

func checkpointJSON(name string, cp projection.Checkpoint, head, lag int64) projectionJSON {
	j := projectionJSON{Name: name, Position: cp.Position, Head: head, LagEvents: lag, Applied: cp.Applied,
		Rebuilding: cp.Rebuilding, RebuildTarget: cp.RebuildTarget, LastError: cp.LastError, UpdatedAt: cp.UpdatedAt}
	if !cp.LastErrorAt.IsZero() {
		t := cp.LastErrorAt
		j.LastErrorAt = &t
	}
	return j
}

func (r *run) projectionsStatus(ctx context.Context, args []string) error {
	pos, err := r.flags("projections status").parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("projections status takes no arguments")
	}
	sts, err := r.projectionStatuses(ctx)
	if err != nil {
		return err
	}
	if sts == nil {
		sts = []projectionJSON{}
	}
	return r.emit(sts, func(w io.Writer) {
		if len(sts) == 0 {
			fmt.Fprintln(w, "no projections have a checkpoint")
			return
		}
		fmt.Fprintln(w, "NAME\tPOSITION\tHEAD\tLAG\tAPPLIED\tSTATE\tUPDATED")
		for _, s := range sts {
			state := "ok"
			switch {
			case s.LastError != "":
				state = "error: " + oneLine(s.LastError, 60)
			case s.Rebuilding:
				state = fmt.Sprintf("rebuilding to %d", s.RebuildTarget)
			}
			lag := fmt.Sprintf("≤%d events", s.LagEvents)
			if s.LagSeconds != nil {
				lag = fmt.Sprintf("%d events, %s", s.LagEvents, (time.Duration(*s.LagSeconds * float64(time.Second))).Round(time.Millisecond))
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%s\t%d\t%s\t%s\n", s.Name, s.Position, s.Head, lag, s.Applied, state, since(s.UpdatedAt))
		}
	})
}

// errNotLinked explains why the generic command cannot rebuild.
var errNotLinked = errors.New(`a rebuild runs the projection's OnReset and its handlers, which this command does not have.
Run it from your service's binary: link package github.com/dddkit/dddkit/dddkitcli with
dddkitcli.Command{Projections: []*projection.Runner{...}} (see its documentation), or call
projection.Runner.Rebuild there`)

func (r *run) projectionsRebuild(ctx context.Context, args []string) error {
	pos, err := r.flags("projections rebuild").parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("projections rebuild takes one projection name")
	}
	name := pos[0]
	for _, runner := range r.cmd.Projections {
		st, err := runner.Status(ctx)
		if err != nil {
			return err
		}
		if st.Name != name {
			continue
		}
		var last projection.Progress
		err = runner.Rebuild(ctx, func(p projection.Progress) {
			last = p
			if !r.json {
				fmt.Fprintf(r.stderr, "%s: position %d of %d, %d applied\n", name, p.Position, p.Target, p.Applied)
			}
		})
		if err != nil {
			return err
		}
		return r.emit(map[string]any{"name": name, "position": last.Position, "applied": last.Applied}, func(w io.Writer) {
			fmt.Fprintf(w, "%s rebuilt: %d events applied, at position %d\n", name, last.Applied, last.Position)
		})
	}
	if len(r.cmd.Projections) > 0 {
		names := make([]string, 0, len(r.cmd.Projections))
		for _, runner := range r.cmd.Projections {
			st, err := runner.Status(ctx)
			if err != nil {
				return err
			}
			names = append(names, st.Name)
		}
		return fmt.Errorf("projections rebuild: no projection %q (this command has %s)", name, strings.Join(names, ", "))
	}
	return fmt.Errorf("projections rebuild %s: %w", name, errNotLinked)
}
