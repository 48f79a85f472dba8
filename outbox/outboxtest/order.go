package outboxtest

import (
	"errors"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/dddkit/dddkit/internal/wire"
)

// OrderCheck checks what a consumer received against the outbox's order
// guarantee: each aggregate's events arrive in version order (1, 2, 3…),
// none skipped. An event received again (delivery is at least once) is
// counted as a duplicate and allowed, as long as it is not ahead of what
// was received before. The zero value is not usable; see [NewOrderCheck].
// An OrderCheck is not safe for concurrent use.
type OrderCheck struct {
	maxSeen    map[string]int64
	seen       map[string]bool
	duplicates int
	total      int
	violations []string
}

// NewOrderCheck returns an empty OrderCheck.
func NewOrderCheck() *OrderCheck {
	return &OrderCheck{maxSeen: map[string]int64{}, seen: map[string]bool{}}
}

// Add records the receipt of event eventID, version version of the
// aggregate that aggregate names (its type and ID, or its ID when every
// event has the same aggregate type).
func (c *OrderCheck) Add(aggregate string, version int64, eventID string) {
	c.total++
	if c.seen[eventID] {
		c.duplicates++
		return
	}
	c.seen[eventID] = true
	if want := c.maxSeen[aggregate] + 1; version != want && len(c.violations) < 20 {
		c.violations = append(c.violations, fmt.Sprintf("%s: got version %d, want %d", aggregate, version, want))
	}
	c.maxSeen[aggregate] = max(c.maxSeen[aggregate], version)
}

// AddMessage records a message a relay published, reading the event from
// its headers; the aggregate is named "type/id".
func (c *OrderCheck) AddMessage(m *message.Message) error {
	env, err := wire.FromMessage(m)
	if err != nil {
		return err
	}
	c.Add(env.AggregateType+"/"+env.AggregateID, env.Version, env.ID)
	return nil
}

// Total returns how many receipts were added, duplicates included.
func (c *OrderCheck) Total() int { return c.total }

// Duplicates returns how many receipts were of an event received before.
func (c *OrderCheck) Duplicates() int { return c.duplicates }

// Complete returns nil when the events arrived in order and every one of
// aggregates aggregates reached version versions; otherwise an error that
// lists what is wrong.
func (c *OrderCheck) Complete(aggregates int, versions int64) error {
	var errs []error
	for _, v := range c.violations {
		errs = append(errs, errors.New("order violated: "+v))
	}
	if len(c.maxSeen) != aggregates {
		errs = append(errs, fmt.Errorf("received events of %d aggregates, want %d", len(c.maxSeen), aggregates))
	}
	short := 0
	for agg, v := range c.maxSeen {
		if v != versions && short < 10 {
			short++
			errs = append(errs, fmt.Errorf("%s reached version %d, want %d", agg, v, versions))
		}
	}
	if want := aggregates * int(versions); len(c.seen) != want {
		errs = append(errs, fmt.Errorf("received %d distinct events, want %d", len(c.seen), want))
	}
	return errors.Join(errs...)
}
