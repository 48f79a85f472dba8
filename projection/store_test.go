package projection_test

import (
	"testing"

	"github.com/dddkit/dddkit/projection"
	"github.com/dddkit/dddkit/projection/projectiontest"
)

func TestMemoryStore(t *testing.T) {
	t.Parallel()
	projectiontest.Run(t, func(t *testing.T) projectiontest.Harness {
		return projectiontest.Harness{
			Store: projection.NewMemoryStore(),
			NewReadModel: func(*testing.T, string) projectiontest.ReadModel {
				return projectiontest.NewMemoryReadModel()
			},
		}
	})
}
