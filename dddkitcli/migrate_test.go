package dddkitcli_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/dddkitcli"
	"github.com/dddkit/dddkit/dddkittest/pgtest"
	"github.com/dddkit/dddkit/postgres"
)

// migrate status, up and sql on an empty schema; doctor is red until
// the schema is migrated.
func TestMigrate(t *testing.T) {
	t.Parallel()
	_, schema := pgtest.Schema(t)
	env := map[string]string{dddkitcli.EnvDatabaseURL: pgtest.DatabaseURL(t), dddkitcli.EnvSchema: schema}
	latest := postgres.LatestVersion()

	type status struct {
		Current, Target int
		Steps           []struct {
			Version int
			Applied bool
		}
	}
	st := jsonOf[status](t, cli(t, nil, env, "migrate", "status", "--json"))
	require.Equal(t, 0, st.Current)
	require.Equal(t, latest, st.Target)
	require.Len(t, st.Steps, latest)
	require.False(t, st.Steps[0].Applied)

	r := cli(t, nil, env, "outbox", "stats")
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	require.Contains(t, r.stderr, "dddkit migrate up")

	r = cli(t, nil, env, "doctor")
	require.Equal(t, dddkitcli.ExitFailed, r.code)
	requireCheck(t, r.stdout, "FAIL", "schema")
	require.Contains(t, r.stdout, "dddkit migrate up")

	r = cli(t, nil, env, "migrate", "up")
	require.Equal(t, dddkitcli.ExitOK, r.code, r.stderr)
	require.Contains(t, r.stdout, fmt.Sprintf("0 → %d", latest))
	r = cli(t, nil, env, "migrate", "up")
	require.Contains(t, r.stdout, "up to date, nothing applied")
	st = jsonOf[status](t, cli(t, nil, env, "migrate", "status", "--json"))
	require.Equal(t, latest, st.Current)
	require.True(t, st.Steps[latest-1].Applied)

	// sql needs no database; --from prints only the later steps.
	r = cli(t, nil, map[string]string{}, "migrate", "sql", "--schema", "shop", "--from", fmt.Sprint(latest-1))
	require.Equal(t, dddkitcli.ExitOK, r.code, r.stderr)
	require.Equal(t, 1, strings.Count(r.stdout, "-- dddkit schema version"))
	require.Contains(t, r.stdout, fmt.Sprintf("-- dddkit schema version %d:", latest))
	require.Contains(t, r.stdout, `"shop"."dddkit_`, "the tables are in the schema asked for")
	all := cli(t, nil, map[string]string{}, "migrate", "sql")
	require.Equal(t, latest, strings.Count(all.stdout, "-- dddkit schema version"))
}
