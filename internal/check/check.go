// Package check collects the problems of a configuration, so that every
// constructor of dddkit reports all of them at once, in one wording:
// "<prefix>.<Field> is <value>, must be >= 0".
package check

import (
	"errors"
	"fmt"
)

// Errors collects configuration problems under a prefix such as
// "postgres: OutboxConfig".
type Errors struct {
	prefix string
	errs   []error
}

// New returns an empty collection for prefix.
func New(prefix string) *Errors { return &Errors{prefix: prefix} }

// Add adds err when it is not nil (the error of a nested config's Validate).
func (e *Errors) Add(err error) {
	if err != nil {
		e.errs = append(e.errs, err)
	}
}

// Addf adds a problem of the field named by format's first words, after
// the prefix: Addf("Brokers is empty") → "<prefix>.Brokers is empty".
func (e *Errors) Addf(format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf(e.prefix+"."+format, args...))
}

// Err joins the problems (nil when there are none).
func (e *Errors) Err() error { return errors.Join(e.errs...) }

// NotNegative adds a problem when v < 0.
func NotNegative[T ~int | ~int32 | ~int64](e *Errors, field string, v T) {
	if v < 0 {
		e.Addf("%s is %v, must be >= 0", field, any(v))
	}
}
