package outbox

import (
	"log/slog"
	"time"

	"github.com/dddkit/dddkit/internal/check"
	"github.com/dddkit/dddkit/retry"
)

// Relay defaults.
const (
	DefaultBatchSize       = 2000
	DefaultMaxInFlight     = 2
	DefaultPollInterval    = time.Second
	DefaultShutdownTimeout = 5 * time.Second
)

// maxBatchSize bounds RelayConfig.BatchSize and the events one fetch
// reads.
const maxBatchSize = 10_000

// DefaultRetry is the default [RelayConfig].Retry: 10 attempts, waits
// from about 1s doubling up to 1m between them.
var DefaultRetry = retry.Policy{MaxAttempts: 10, BaseDelay: time.Second, MaxDelay: time.Minute}

// RelayConfig configures a [Relay]. The zero value (or nil) is usable.
type RelayConfig struct {
	// BatchSize is how many events the relay reads and publishes at a
	// time (default 2000, at most 10000). A batch publishes an aggregate's
	// events one publisher call after another (see MaxInFlight), so after
	// a full batch whose aggregates had several events each, the relay
	// reads BatchSize times the events per aggregate (at most 10,000),
	// and its calls carry about BatchSize events again; after a batch that
	// was not full, BatchSize (a read beside batches in flight that
	// found nothing changes neither). A batch in flight holds its events
	// in memory.
	BatchSize int
	// MaxInFlight is how many batches the relay publishes at once
	// (default 2, at most 64; 1 publishes one batch at a time). While the
	// last batch it read was full, it reads and sends the next one without
	// waiting for the acknowledgements of those in flight, and records
	// each batch as soon as its own acknowledgements are in. Batches in
	// flight together never hold events of the same aggregate (the
	// [Source] holds back an aggregate's later events while an earlier one
	// is in flight), so order per aggregate does not depend on the
	// publisher; the publisher must be safe for concurrent use. Each
	// batch read beside others in flight costs the Source more (the
	// PostgreSQL outbox reads the keys of the rows in flight; a relay
	// leading some of its shards reads them by two lanes instead, with one
	// batch of each in flight, so it keeps at most two), so a larger
	// window pays only where the publisher's round trip, not the
	// database, is what the relay waits for. That can be the case when
	// commands record several events each: a batch publishes an
	// aggregate's events one acknowledged publisher call after another (a
	// call never carries two events of one aggregate, so that a failed one
	// is never overtaken by the next), so its time grows with the events
	// per aggregate (the relay then reads larger batches, see BatchSize).
	MaxInFlight int
	// PollInterval is how often the relay looks for events when nothing
	// woke it (default 1s). A Source that notifies (PostgreSQL's
	// LISTEN/NOTIFY, Memory) wakes it at once after a commit.
	PollInterval time.Duration
	// Retry bounds the publish attempts of one event and the waits between
	// them (default [DefaultRetry]); after the last attempt the event is
	// failed and holds back the later events of its aggregate until an
	// operator retries or discards it.
	Retry retry.Policy
	// ShutdownTimeout is how long a batch in flight may take to finish
	// once Run's context is cancelled (default 5s).
	ShutdownTimeout time.Duration
	// StatsInterval is how often a running relay reads the Source's
	// [Stats] for its gauges (default [DefaultStatsInterval]): a
	// metrics scrape reads the last reading and never queries. The relay
	// reads nothing while no OpenTelemetry SDK is installed.
	StatsInterval time.Duration
	// Hooks observe the relay (alerts, logs, metrics of your own; the
	// relay's OpenTelemetry metrics need none).
	Hooks Hooks
	// Logger receives the relay's warnings; nil discards them.
	Logger *slog.Logger
}

// Validate reports every problem of the configuration at once.
func (c *RelayConfig) Validate() error {
	if c == nil {
		return nil
	}
	e := check.New("outbox: RelayConfig")
	check.NotNegative(e, "BatchSize", c.BatchSize)
	check.NotNegative(e, "MaxInFlight", c.MaxInFlight)
	check.NotNegative(e, "PollInterval", c.PollInterval)
	check.NotNegative(e, "ShutdownTimeout", c.ShutdownTimeout)
	check.NotNegative(e, "StatsInterval", c.StatsInterval)
	if c.BatchSize > maxBatchSize {
		e.Addf("BatchSize %d is above the limit of %d", c.BatchSize, maxBatchSize)
	}
	if c.MaxInFlight > 64 {
		e.Addf("MaxInFlight %d is above the limit of 64", c.MaxInFlight)
	}
	if err := c.Retry.Validate(); err != nil {
		e.Addf("Retry: %w", err)
	}
	return e.Err()
}

func (c *RelayConfig) withDefaults() (RelayConfig, error) {
	if err := c.Validate(); err != nil {
		return RelayConfig{}, err
	}
	var out RelayConfig
	if c != nil {
		out = *c
	}
	if out.BatchSize == 0 {
		out.BatchSize = DefaultBatchSize
	}
	if out.MaxInFlight == 0 {
		out.MaxInFlight = DefaultMaxInFlight
	}
	if out.PollInterval == 0 {
		out.PollInterval = DefaultPollInterval
	}
	out.Retry = out.Retry.WithDefaults(DefaultRetry)
	if out.ShutdownTimeout == 0 {
		out.ShutdownTimeout = DefaultShutdownTimeout
	}
	if out.StatsInterval == 0 {
		out.StatsInterval = DefaultStatsInterval
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	return out, nil
}
