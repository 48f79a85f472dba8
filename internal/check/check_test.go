package check_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/internal/check"
)

func TestErrorsCollectsEveryProblem(t *testing.T) {
	t.Parallel()
	e := check.New("pkg: Config")
	require.NoError(t, e.Err())
	check.NotNegative(e, "Wait", -time.Second)
	check.NotNegative(e, "Count", -2)
	check.NotNegative(e, "Fine", 0)
	e.Add(nil)
	nested := errors.New("nested: bad")
	e.Add(nested)
	e.Addf("Name %q is too long", "x")
	err := e.Err()
	require.EqualError(t, err, "pkg: Config.Wait is -1s, must be >= 0\npkg: Config.Count is -2, must be >= 0\nnested: bad\npkg: Config.Name \"x\" is too long")
	require.ErrorIs(t, err, nested)
}
