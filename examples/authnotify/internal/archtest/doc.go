// Package archtest holds no code, only a test that enforces the example's
// architecture: the auth and notification modules never import each
// other (they share only the event contract, contracts/authevents, and
// the field cipher, internal/fieldcrypt), and domain packages import
// nothing from infrastructure.
package archtest
