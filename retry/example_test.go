package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/retry"
)

// Do retries an operation that fails with a transient error and returns
// its first success.
func ExamplePolicy_Do() {
	errBusy := errors.New("busy")
	p := retry.Policy{MaxAttempts: 5, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond}

	calls := 0
	err := p.Do(context.Background(), func(err error) bool { return errors.Is(err, errBusy) }, func(context.Context) error {
		calls++
		if calls < 3 {
			return errBusy
		}
		return nil
	})
	fmt.Println("calls:", calls, "error:", err)
	// Output:
	// calls: 3 error: <nil>
}

// When the attempts are used up, Do returns an *Error that says how many
// ran and wraps the last error.
func ExamplePolicy_Do_givingUp() {
	errBusy := errors.New("busy")
	p := retry.Policy{MaxAttempts: 3, BaseDelay: time.Millisecond}

	err := p.Do(context.Background(), nil, func(context.Context) error { return errBusy })
	fmt.Println(err)
	fmt.Println("still busy:", errors.Is(err, errBusy))
	var re *retry.Error
	if errors.As(err, &re) {
		fmt.Println("attempts:", re.Attempts)
	}
	// Output:
	// gave up after 3 attempts: busy
	// still busy: true
	// attempts: 3
}

// A package that takes a Policy in its config validates it and fills in
// its own defaults for the zero fields.
func ExamplePolicy_WithDefaults() {
	defaults := retry.Policy{MaxAttempts: 3, BaseDelay: 10 * time.Millisecond, MaxDelay: time.Second}

	fromConfig := retry.Policy{MaxAttempts: 5}
	if err := fromConfig.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%+v\n", fromConfig.WithDefaults(defaults))

	fmt.Println(retry.Policy{MaxAttempts: -1, BaseDelay: time.Second, MaxDelay: time.Millisecond}.Validate())
	// Output:
	// {MaxAttempts:5 BaseDelay:10ms MaxDelay:1s}
	// retry: Policy.MaxAttempts is -1, must be >= 0
	// retry: Policy.BaseDelay (1s) is larger than MaxDelay (1ms)
}
