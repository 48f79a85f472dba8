package repository

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/internal/aggstore"
	"github.com/dddkit/dddkit/internal/telemetry"
	"github.com/dddkit/dddkit/retry"
)

// MemoryConfig configures a [*Memory] repository. A nil *MemoryConfig means
// the defaults.
type MemoryConfig struct {
	// Options are applied, through [aggregate.Restore], to every
	// aggregate this repository loads (Load, LoadByKey and Update) after
	// [Mapping.Decode] has built it. Typically aggregate.WithClock(clock),
	// so that events recorded after a load are stamped by the same clock
	// as those of a new aggregate (a fake one in tests). The metadata of
	// the request's context ([aggregate.MetadataFromContext]) is applied
	// after them; fields it leaves empty are filled from an
	// [aggregate.WithMetadata] given here. nil entries are ignored.
	Options []aggregate.Option

	// Retry, if set, makes Update re-run its whole load → fn → save cycle
	// when the save loses a race with another writer
	// ([aggregate.ErrConcurrencyConflict]), each time with a freshly loaded
	// aggregate, so fn must act only on the aggregate it is given. Zero
	// fields of the policy mean 3 attempts, a BaseDelay of 10ms and a
	// MaxDelay of 1s. nil means Update returns the conflict at once (to
	// retry at another level, such as the cqrs retry middleware; do not
	// stack both).
	Retry *retry.Policy
}

// Memory is the in-memory adapter of [Repository]: the store of unit tests
// and of services running embedded, without a database. It behaves like
// [*Postgres]: versions are checked on every save ([*aggregate.ConflictError]
// and nothing stored on a stale one), unique keys are enforced, and each
// successful save hands the aggregate's events to an [EventSink] in the
// same atomic step. State is kept as the bytes the [Mapping] encodes, so
// an aggregate returned by Load shares nothing with the store or with other
// callers, and a Mapping that round-trips wrongly fails here as it would on
// PostgreSQL.
//
// A Memory is safe for concurrent use. Update is optimistic, like the
// PostgreSQL adapter's default: it does not hold a lock while fn runs.
type Memory[A aggregate.Aggregate] struct {
	mapping Mapping[A]
	sink    EventSink
	retry   aggstore.Retry
	options []aggregate.Option

	mu   sync.RWMutex
	rows map[string]*memRow
	keys map[Key]string // key → ID of the aggregate that holds it
}

type memRow struct {
	version int64
	state   []byte
	keys    []Key
}

// NewMemory returns an empty in-memory repository for the aggregates that
// mapping describes. Events of successful saves go to sink, typically an
// *outbox.Memory. A nil cfg means the defaults.
func NewMemory[A aggregate.Aggregate](sink EventSink, mapping Mapping[A], cfg *MemoryConfig) (*Memory[A], error) {
	if cfg == nil {
		cfg = &MemoryConfig{}
	}
	var errs []error
	if sink == nil {
		errs = append(errs, errors.New("repository: NewMemory: sink is nil"))
	}
	errs = append(errs, mapping.Validate())
	rp, err := aggstore.NewRetry(cfg.Retry, "MemoryConfig.Retry")
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &Memory[A]{
		mapping: mapping,
		sink:    sink,
		retry:   rp,
		options: slices.Clone(cfg.Options),
		rows:    make(map[string]*memRow),
		keys:    make(map[Key]string),
	}, nil
}

// Load returns the aggregate with the given ID, decoded from the stored
// state, with [MemoryConfig.Options] and the metadata of ctx
// ([aggregate.MetadataFromContext]) applied to its root, so that events it
// records carry the configured clock and the request's correlation and
// causation IDs. A missing aggregate gives an error wrapping
// [aggregate.ErrNotFound].
func (r *Memory[A]) Load(ctx context.Context, id string) (A, error) {
	var zero A
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("repository: load %s %s: %w", r.mapping.Type, id, err)
	}
	r.mu.RLock()
	row, ok := r.rows[id]
	var version int64
	var state []byte
	if ok {
		version, state = row.version, slices.Clone(row.state)
	}
	r.mu.RUnlock()
	if !ok {
		return zero, fmt.Errorf("repository: load %s %s: %w", r.mapping.Type, id, aggregate.ErrNotFound)
	}
	return r.decode(ctx, id, version, state)
}

// LoadByKey returns the aggregate that holds the unique key name=value (see
// [Mapping.Keys]), like Load. None gives an error wrapping
// [aggregate.ErrNotFound].
func (r *Memory[A]) LoadByKey(ctx context.Context, name, value string) (A, error) {
	var zero A
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("repository: load %s by %s: %w", r.mapping.Type, name, err)
	}
	r.mu.RLock()
	id, ok := r.keys[Key{Name: name, Value: value}]
	var version int64
	var state []byte
	if ok {
		row := r.rows[id]
		version, state = row.version, slices.Clone(row.state)
	}
	r.mu.RUnlock()
	if !ok {
		return zero, fmt.Errorf("repository: load %s by %s: %w", r.mapping.Type, name, aggregate.ErrNotFound)
	}
	return r.decode(ctx, id, version, state)
}

func (r *Memory[A]) decode(ctx context.Context, id string, version int64, state []byte) (A, error) {
	return r.mapping.decode(id, version, state, aggstore.LoadOptions(ctx, r.options)...)
}

// Save stores a's state and appends its uncommitted events to the sink, if
// the store still holds a's committed version; then it marks a committed.
// A stale version gives an [*aggregate.ConflictError], a new aggregate
// whose ID is taken an [*aggregate.AlreadyExistsError], a taken key a
// [*DuplicateKeyError], a failing sink its error; in each case nothing is
// stored, nothing is appended and a is left as it was. Events lacking
// metadata get it from ctx. An aggregate without uncommitted events is not
// written at all (its state changes only through events).
func (r *Memory[A]) Save(ctx context.Context, a A) (err error) {
	root, err := aggstore.CheckSave(a, r.mapping.Type)
	if err != nil {
		return err
	}
	if !root.HasChanges() {
		return nil
	}
	ctx, span := aggstore.StartSave(ctx, r.mapping.Type, root)
	defer func() { telemetry.End(span, err) }()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("repository: save %s %s: %w", r.mapping.Type, root.ID(), err)
	}
	state, err := r.mapping.encode(root, a)
	if err != nil {
		return err
	}
	keys := r.mapping.KeysOf(a)
	events := aggstore.PendingEvents(ctx, root)
	id, expected := root.ID(), root.CommittedVersion()

	r.mu.Lock()
	defer r.mu.Unlock()
	row := r.rows[id]
	var actual int64
	if row != nil {
		actual = row.version
	}
	if actual != expected {
		if expected == 0 {
			return &aggregate.AlreadyExistsError{Type: r.mapping.Type, ID: id}
		}
		return &aggregate.ConflictError{Type: r.mapping.Type, ID: id, Expected: expected, Actual: actual}
	}
	for _, k := range keys {
		if owner, taken := r.keys[k]; taken && owner != id {
			return &DuplicateKeyError{Type: r.mapping.Type, ID: id, Key: k}
		}
	}
	if err := r.sink.Append(ctx, events...); err != nil {
		return fmt.Errorf("repository: save %s %s: append events: %w", r.mapping.Type, id, err)
	}
	if row == nil {
		row = &memRow{}
		r.rows[id] = row
	}
	for _, k := range row.keys {
		if !slices.Contains(keys, k) {
			delete(r.keys, k)
		}
	}
	for _, k := range keys {
		r.keys[k] = id
	}
	row.version, row.state, row.keys = root.Version(), state, keys
	aggregate.MarkCommitted(root, root.Version())
	return nil
}

// Update loads the aggregate, runs fn on it and saves it. An error from fn
// is returned unchanged and nothing is saved. A concurrency conflict is
// retried as [MemoryConfig.Retry] says, each time with a freshly loaded
// aggregate and a new call of fn.
func (r *Memory[A]) Update(ctx context.Context, id string, fn func(A) error) error {
	if fn == nil {
		return fmt.Errorf("repository: update %s %s: fn is nil", r.mapping.Type, id)
	}
	return r.retry.Run(ctx, "update "+r.mapping.Type+" "+id, func(ctx context.Context) error {
		a, err := r.Load(ctx, id)
		if err != nil {
			return err
		}
		if err := fn(a); err != nil {
			return err
		}
		return r.Save(ctx, a)
	})
}

// Len returns the number of stored aggregates.
func (r *Memory[A]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.rows)
}

var (
	_ Repository[aggregate.Aggregate] = (*Memory[aggregate.Aggregate])(nil)
	_ KeyLoader[aggregate.Aggregate]  = (*Memory[aggregate.Aggregate])(nil)
)
