// Package e2ebench holds the end-to-end benchmark of a dddkit service's
// event pipeline (in its test file): commands on the cqrs bus save an
// aggregate through the PostgreSQL repository in a unit of work, the
// outbox relay publishes its event to Kafka, and a consumer with the
// PostgreSQL inbox writes a row for it. It needs PostgreSQL and Kafka
// (TEST_DATABASE_URL, TEST_KAFKA_BROKERS) and skips without them:
//
//	scripts/testenv.sh go test -run '^$' -bench BenchmarkPipeline -benchtime 1x ./internal/e2ebench/
package e2ebench
