package cqrs

// MetricsOn is Metrics on a meter of the test's own.
var MetricsOn = newMetrics
