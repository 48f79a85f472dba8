package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/dddkittest"
	"github.com/dddkit/dddkit/dddkittest/kafkatest"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/eventbus/eventbustest"
	"github.com/dddkit/dddkit/internal/testinfra"
	"github.com/dddkit/dddkit/postgres"
	"github.com/dddkit/dddkit/retry"
)

// Dead letters keep order on Kafka with the PostgreSQL store and inbox:
// the parking suite the in-memory adapters pass.
func TestParkingSuite(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	eventbustest.RunParking(t, func(t *testing.T) eventbustest.ParkingHarness {
		pg := setupPG(t)
		store, err := postgres.NewDeadLetters(pg.pool, nil)
		require.NoError(t, err)
		return eventbustest.ParkingHarness{
			Transport:   c,
			Topic:       func(t testing.TB) string { return kafkatest.Topic(t, 3) },
			DeadLetters: store,
			Inbox:       pg.inbox,
		}
	})
}

// HandleOnce on Kafka (batches) parks the key of its dead letter: order
// "A" fails for good at its event 4, A's events 5..10 wait while B..Z are
// applied; after a fix, a replay applies A's 4..11 in order, a skip
// 5..11.
func TestHandleOnceBatchParksBehindDeadLetter(t *testing.T) {
	t.Parallel()
	for _, replay := range []bool{true, false} {
		t.Run(fmt.Sprintf("replay=%v", replay), func(t *testing.T) {
			t.Parallel()
			pg := setupPG(t)
			k := setupKafka(t, 3)
			ctx := context.Background()
			_, err := pg.pool.Exec(ctx, `ALTER TABLE effects ADD COLUMN seq bigserial`)
			require.NoError(t, err)
			store, err := postgres.NewDeadLetters(pg.pool, nil)
			require.NoError(t, err)
			name := "batch-parking-" + dddkittest.UniqueSuffix()
			var broken atomic.Bool
			broken.Store(true)
			var calls atomic.Int64
			apply := applyOrder(&calls)
			r, err := eventbus.NewRouter(k.client, k.reg, &eventbus.RouterConfig{
				Logger:          testLogger(),
				DeadLetterTopic: k.deadLetter,
				DeadLetters:     store,
				Retry:           retry.Policy{MaxAttempts: 3, BaseDelay: 5 * time.Millisecond, MaxDelay: 20 * time.Millisecond},
				MaxWait:         50 * time.Millisecond,
			})
			require.NoError(t, err)
			require.NoError(t, eventbus.HandleOnce(r, name, pg.inbox, func(ctx context.Context, e orderPlaced, env aggregate.Envelope) error {
				if env.AggregateID == "A" && e.Amount == 4 && broken.Load() {
					return eventbus.Permanent(errors.New("poison A4"))
				}
				return apply(ctx, e, env)
			}))
			start(t, r)

			var envs []aggregate.Envelope
			for n := 1; n <= 10; n++ {
				envs = append(envs, order("A", n))
				if n >= 4 {
					for key := 'B'; key <= 'Z'; key++ {
						if int(key-'B')%7 == n-4 {
							envs = append(envs, order(string(key), 1))
						}
					}
				}
			}
			require.NoError(t, k.pub.Publish(ctx, envs...))
			amountsOf := func(key string) []int {
				rows, err := pg.pool.Query(ctx, `SELECT amount FROM effects WHERE aggregate_id = $1 ORDER BY seq`, key)
				require.NoError(t, err)
				amounts, err := pgx.CollectRows(rows, pgx.RowTo[int])
				require.NoError(t, err)
				return amounts
			}
			testinfra.Eventually(t, 60*time.Second, func() bool {
				dl, _, err := store.Get(ctx, name, "A")
				return err == nil && dl.Parked == 6 &&
					pg.count(t, `SELECT count(DISTINCT aggregate_id) FROM effects WHERE aggregate_id <> 'A'`) == 25
			}, "A not parked with 5..10, or B..Z not all applied")
			require.Equal(t, []int{1, 2, 3}, amountsOf("A"), "A waits behind its event 4")
			dl, parked, err := store.Get(ctx, name, "A")
			require.NoError(t, err)
			require.Equal(t, envs[3].ID, dl.Event.ID)
			require.Contains(t, dl.Reason, "poison A4")
			require.Len(t, parked, 6)
			require.False(t, pg.processed(t, name, envs[3].ID), "the dead event is not marked processed")

			// Parked while A waits.
			require.NoError(t, k.pub.Publish(ctx, order("A", 11)))
			testinfra.Eventually(t, 60*time.Second, func() bool {
				dl, _, err := store.Get(ctx, name, "A")
				return err == nil && dl.Parked == 7
			}, "A's event 11 not parked")

			broken.Store(false)
			release, want := eventbus.ReplayDeadLetter, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
			if !replay {
				release, want = eventbus.SkipDeadLetter, []int{1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12}
			}
			require.NoError(t, release(ctx, store, k.client.Publisher(), name, "A"))
			require.NoError(t, k.pub.Publish(ctx, order("A", 12))) // behind the release on A's partition
			testinfra.Eventually(t, 60*time.Second, func() bool { return len(amountsOf("A")) >= len(want) }, "A not released")
			require.Equal(t, want, amountsOf("A"), "A's events applied in order, once each")
			_, _, err = store.Get(ctx, name, "A")
			require.ErrorIs(t, err, eventbus.ErrNoDeadLetter)
		})
	}
}
