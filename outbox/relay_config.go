package outbox

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/wire"
	"github.com/dddkit/dddkit/retry"
)

// Defaults of [RelayConfig].
const (
	DefaultBatchSize          = 1000
	DefaultPollInterval       = time.Second
	DefaultLeaderPollInterval = 500 * time.Millisecond
	DefaultCleanupInterval    = time.Minute
	DefaultShutdownTimeout    = 5 * time.Second
)

// DefaultRetry fills in the zero fields of [RelayConfig.Retry]: 10 attempts,
// waits that start at up to 1s and double up to 1m.
var DefaultRetry = retry.Policy{MaxAttempts: 10, BaseDelay: time.Second, MaxDelay: time.Minute}

// RelayConfig configures a [Relay] or a [MemoryRelay]. A nil *RelayConfig
// and zero fields mean the defaults.
type RelayConfig struct {
	// Outbox says which outbox table to read (nil = defaults); it must
	// match the [Config] the writers use. Ignored by [MemoryRelay].
	Outbox *Config

	// Topic chooses the topic of an event. The envelope it gets has every
	// field except Payload (nil; the relay never decodes payloads). Default:
	// wire.DefaultTopic(env.AggregateType), i.e. "<aggregate type>.events".
	// Events of one aggregate should go to one topic: order is kept per
	// topic and aggregate.
	Topic func(env aggregate.Envelope) string

	// BatchSize is the largest number of events claimed and published at
	// once. Default [DefaultBatchSize].
	BatchSize int

	// PollInterval is how often the relay looks for work when no
	// notification arrived: the fallback for missed notifications and the
	// timer for retries. Default [DefaultPollInterval]. Commits wake the
	// relay through LISTEN/NOTIFY within milliseconds regardless.
	PollInterval time.Duration

	// LeaderPollInterval is how often a standby relay tries to become the
	// active one; it bounds the fail-over time after the active relay's
	// database session ends. Default [DefaultLeaderPollInterval].
	// Ignored by [MemoryRelay].
	LeaderPollInterval time.Duration

	// Retry says how often the publishing of an event is attempted and
	// how long to wait after a failure: after MaxAttempts failed attempts
	// (1 means no retry) the event is marked failed, and after the n-th
	// failure it waits [retry.Policy.Delay](n) (recorded as its next
	// attempt's time) while the relay goes on with other aggregates. Zero
	// fields are taken from [DefaultRetry]: 10 attempts, waits of up to
	// 1s, 2s, 4s, ... and at most 1m, each drawn between half its bound and
	// the bound.
	Retry retry.Policy

	// Retention is how long published rows are kept. Zero deletes a row as
	// soon as it is published (the cheapest), a positive value marks it
	// published and a periodic cleanup deletes it once older, a negative
	// value keeps published rows forever (clean them with
	// [Admin.DeletePublished]). Ignored by [MemoryRelay], which keeps
	// nothing.
	Retention time.Duration

	// CleanupInterval is how often the active relay deletes expired
	// published rows when Retention > 0. Default [DefaultCleanupInterval].
	CleanupInterval time.Duration

	// ShutdownTimeout bounds how long Run keeps finishing the in-flight
	// batch (publish, then mark) after its context is done; after it, the
	// batch is abandoned and its rows stay pending (they are published
	// again later: at-least-once). Default [DefaultShutdownTimeout].
	ShutdownTimeout time.Duration

	// Hooks receive events for metrics and logs.
	Hooks Hooks

	// Logger receives the relay's log lines; nil discards them.
	Logger *slog.Logger
}

// Validate reports every problem with c, joined. A nil c is valid.
func (c *RelayConfig) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	if err := c.Outbox.Validate(); err != nil {
		errs = append(errs, err)
	}
	neg := func(name string, bad bool) {
		if bad {
			errs = append(errs, fmt.Errorf("outbox: RelayConfig.%s must not be negative", name))
		}
	}
	neg("BatchSize", c.BatchSize < 0)
	neg("PollInterval", c.PollInterval < 0)
	neg("LeaderPollInterval", c.LeaderPollInterval < 0)
	neg("CleanupInterval", c.CleanupInterval < 0)
	neg("ShutdownTimeout", c.ShutdownTimeout < 0)
	if err := c.Retry.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("outbox: RelayConfig.Retry: %w", err))
	}
	if c.BatchSize > 10000 {
		errs = append(errs, fmt.Errorf("outbox: RelayConfig.BatchSize %d is above the limit of 10000", c.BatchSize))
	}
	return errors.Join(errs...)
}

func (c *RelayConfig) withDefaults() (RelayConfig, Config, error) {
	if err := c.Validate(); err != nil {
		return RelayConfig{}, Config{}, err
	}
	var out RelayConfig
	if c != nil {
		out = *c
	}
	oc, err := out.Outbox.withDefaults()
	if err != nil {
		return RelayConfig{}, Config{}, err
	}
	if out.Topic == nil {
		out.Topic = func(env aggregate.Envelope) string { return wire.DefaultTopic(env.AggregateType) }
	}
	if out.BatchSize == 0 {
		out.BatchSize = DefaultBatchSize
	}
	if out.PollInterval == 0 {
		out.PollInterval = DefaultPollInterval
	}
	if out.LeaderPollInterval == 0 {
		out.LeaderPollInterval = DefaultLeaderPollInterval
	}
	out.Retry = out.Retry.WithDefaults(DefaultRetry)
	if out.CleanupInterval == 0 {
		out.CleanupInterval = DefaultCleanupInterval
	}
	if out.ShutdownTimeout == 0 {
		out.ShutdownTimeout = DefaultShutdownTimeout
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out, oc, nil
}
