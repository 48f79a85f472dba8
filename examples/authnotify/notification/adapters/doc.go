// Package adapters holds the notification module's adapters for the
// embedded default: [DevMailbox], an [app.EmailSender] that keeps and logs
// every email and shows them over HTTP, and [JobQueue], an in-process
// [app.EmailJobQueue] with the retry behaviour of the production one
// (River): retryable errors are retried with jittered exponential backoff
// or after the provider's retry-after hint, permanent ones fail at once.
package adapters
