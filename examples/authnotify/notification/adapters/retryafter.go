package adapters

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads an HTTP Retry-After value (RFC 9110, section
// 10.2.3): a number of seconds or an HTTP date, relative to now. It
// reports false for a missing or malformed value; a date in the past is
// zero. Email senders use it to build app.RetryAfter errors from a
// provider's 429 or 503.
func ParseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if secs, err := strconv.ParseUint(value, 10, 32); err == nil {
		return time.Duration(secs) * time.Second, true
	}
	at, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	return max(at.Sub(now), 0), true
}
