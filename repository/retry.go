package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/retry"
)

// defaultRetry fills in the zero fields of a repository config's Retry
// policy: up to 3 attempts, waiting about 10ms and then 20ms in between.
var defaultRetry = retry.Policy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second}

// retryPolicy is how Update retries: the config's *retry.Policy, validated
// and with defaults filled in. The zero retryPolicy (from a nil *Policy)
// does not retry.
type retryPolicy struct {
	policy retry.Policy
	on     bool
}

// newRetryPolicy validates p, the Retry field named field of a config, and
// fills in [defaultRetry]. A nil p means no retry: Update returns the
// conflict at once.
func newRetryPolicy(p *retry.Policy, field string) (retryPolicy, error) {
	if p == nil {
		return retryPolicy{}, nil
	}
	if err := p.Validate(); err != nil {
		return retryPolicy{}, fmt.Errorf("repository: %s: %w", field, err)
	}
	return retryPolicy{policy: p.WithDefaults(defaultRetry), on: true}, nil
}

// run calls attempt until it succeeds, fails with something other than a
// concurrency conflict, or the policy gives up; see [retry.Policy.Do]. A
// give-up error says what (such as "update user u1") and wraps the
// [*retry.Error].
func (r retryPolicy) run(ctx context.Context, what string, attempt func(ctx context.Context) error) error {
	if !r.on {
		return attempt(ctx)
	}
	var last error
	err := r.policy.Do(ctx, isConflict, func(ctx context.Context) error {
		last = attempt(ctx)
		return last
	})
	if err != nil && err != last { //nolint:errorlint // identity: Do gave up (a *retry.Error), it did not pass the attempt's error through
		return fmt.Errorf("repository: %s: %w", what, err)
	}
	return err
}

func isConflict(err error) bool { return errors.Is(err, aggregate.ErrConcurrencyConflict) }
