// Package domain is the notification module's domain: the kinds of email
// it sends ([Kind]), the job that asks for one ([EmailJob]) and the
// rendered message ([Email]), made from a text and an HTML template per
// kind ([Templates], embedded in the binary).
//
// The module learns what happened in the auth module only from its events
// (contracts/authevents); it imports no auth package.
package domain
