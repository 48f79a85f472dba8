package dddkitcli

import (
	"context"
	"fmt"
	"io"

	"github.com/dddkit/dddkit/postgres"
)

type migrationJSON struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	Applied bool   `json:"applied"`
}

type migrateStatusJSON struct {
	Current int             `json:"current"`
	Target  int             `json:"target"`
	Steps   []migrationJSON `json:"steps"`
}

func (r *run) migrateStatus(ctx context.Context, args []string) error {
	pos, err := r.flags("migrate status").parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("migrate status takes no arguments")
	}
	pool, err := r.db(ctx)
	if err != nil {
		return err
	}
	current, target, err := postgres.Version(ctx, pool, &r.tables)
	if err != nil {
		return err
	}
	steps, err := postgres.Migrations(&r.tables)
	if err != nil {
		return err
	}
	out := migrateStatusJSON{Current: current, Target: target}
	for _, s := range steps {
		out.Steps = append(out.Steps, migrationJSON{Version: s.Version, Name: s.Name, Applied: s.Version <= current})
	}
	return r.emit(out, func(w io.Writer) {
		fmt.Fprintf(w, "schema version %d of %d", current, target)
		if current < target {
			fmt.Fprintf(w, ": %d steps to apply (dddkit migrate up)\n", target-current)
		} else {
			fmt.Fprintln(w, ": up to date")
		}
		for _, s := range out.Steps {
			mark := "pending"
			if s.Applied {
				mark = "applied"
			}
			fmt.Fprintf(w, "%d\t%s\t%s\n", s.Version, mark, s.Name)
		}
	})
}

type migrateUpJSON struct {
	From int `json:"from"`
	To   int `json:"to"`
}

func (r *run) migrateUp(ctx context.Context, args []string) error {
	pos, err := r.flags("migrate up").parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("migrate up takes no arguments")
	}
	pool, err := r.db(ctx)
	if err != nil {
		return err
	}
	from, _, err := postgres.Version(ctx, pool, &r.tables)
	if err != nil {
		return err
	}
	if err := postgres.Migrate(ctx, pool, &r.tables); err != nil {
		return err
	}
	to, _, err := postgres.Version(ctx, pool, &r.tables)
	if err != nil {
		return err
	}
	return r.emit(migrateUpJSON{From: from, To: to}, func(w io.Writer) {
		if from == to {
			fmt.Fprintf(w, "schema version %d: up to date, nothing applied\n", to)
			return
		}
		fmt.Fprintf(w, "schema version %d → %d\n", from, to)
	})
}

// migrateSQL prints the steps' SQL for a team's own migration tool. It
// needs no database; --from V prints only the steps after version V.
func (r *run) migrateSQL(_ context.Context, args []string) error {
	f := r.flags("migrate sql")
	from := f.Int("from", 0, "print only the steps after this version")
	pos, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("migrate sql takes no arguments")
	}
	steps, err := postgres.Migrations(&r.tables)
	if err != nil {
		return err
	}
	type stepJSON struct {
		Version int    `json:"version"`
		Name    string `json:"name"`
		SQL     string `json:"sql"`
	}
	out := []stepJSON{}
	for _, s := range steps {
		if s.Version > *from {
			out = append(out, stepJSON(s))
		}
	}
	if r.json {
		return r.emit(out, nil)
	}
	for _, s := range out {
		fmt.Fprintf(r.stdout, "-- dddkit schema version %d: %s\n%s\n", s.Version, s.Name, s.SQL)
	}
	return nil
}
