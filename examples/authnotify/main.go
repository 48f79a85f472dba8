// Command authnotify is the dddkit example system: sign-up with a one-time
// code sent by email, verification, log-in and password change, with the
// auth and notification modules talking only through domain events.
//
// This is a placeholder until the example lands; it prints the plan.
package main

import (
	"fmt"
	"os"
)

const plan = `authnotify — the dddkit example (work in progress)

Coming here: a complete auth → notification system on dddkit.

  POST /auth/register                 → UserRegistered   → verification code email
  POST /auth/verify                   → UserVerified     → welcome email
  POST /auth/resend-verification-code → UserOtpRequested → new code email
  POST /auth/login                    → JWT access token
  PATCH /auth/password                → PasswordChanged  → security notice email

  HTTP → command bus → User aggregate → event → outbox (same transaction)
       → relay → Kafka → notification consumer (inbox) → email job → Resend

With nothing configured it will run embedded (in-memory stores, in-process
transport, a dev mailbox at /dev/emails); DATABASE_URL, KAFKA_BROKERS and
RESEND_API_KEY switch it to PostgreSQL, Kafka and Resend.
`

func main() {
	fmt.Fprint(os.Stdout, plan)
}
