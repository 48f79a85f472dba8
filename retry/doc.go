// Package retry is the one retry policy of dddkit: how many times to run an
// operation that failed, and how long to wait in between.
//
// A [Policy] is plain data (attempts, a base delay and a cap) that the
// packages which retry take in their configs: the cqrs retry middleware
// (cqrs.RetryConfig.Policy), the repositories' Update (the Retry field of
// their configs), the outbox relay (outbox.RelayConfig.Retry) and the event
// consumers (eventbus.RouterConfig.Retry). Each of them documents its own
// defaults for the zero fields and what counts as a failure worth another
// attempt; this package only provides the arithmetic and the loop, with the
// standard library alone.
//
// # Delays
//
// The wait after the n-th failure in a row is drawn at random between half
// and all of min(MaxDelay, BaseDelay·2^(n-1)) ("equal jitter", see
// [Policy.Delay]): it grows exponentially, never passes the cap, and
// writers that failed together do not retry in lockstep.
//
// # Running an operation
//
// [Policy.Do] runs a function until it succeeds, fails with an error the
// caller does not want retried, the attempts are used up or the context
// ends. When it gives up on a retryable error it returns an [*Error] that
// says how many attempts ran and wraps the last error, so errors.Is and
// errors.As still reach it:
//
//	p := retry.Policy{MaxAttempts: 5, BaseDelay: 50 * time.Millisecond, MaxDelay: 2 * time.Second}
//	err := p.Do(ctx, isTransient, func(ctx context.Context) error {
//		return client.Call(ctx, req)
//	})
//
// Do uses the policy as it is: fill in defaults first with
// [Policy.WithDefaults], and check a policy that came from configuration
// with [Policy.Validate]. [Sleep] is the context-aware wait that Do uses,
// for loops that schedule their own retries.
package retry
