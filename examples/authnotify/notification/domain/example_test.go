package domain_test

import (
	"fmt"
	"time"

	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

func ExampleTemplates_Render() {
	tpl, err := domain.NewTemplates("")
	if err != nil {
		panic(err)
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	email, err := tpl.Render(domain.EmailJob{
		ID:            "0195f3c2-0000-7000-8000-000000000001", // the event ID
		Kind:          domain.KindVerificationCode,
		To:            "ada@example.com",
		UserID:        "0195f3c2-0000-7000-8000-00000000000a",
		EncryptedCode: "v1.…", // opened by the worker before rendering
		CodeExpiresAt: at.Add(10 * time.Minute),
		OccurredAt:    at,
	}, "493027")
	if err != nil {
		panic(err)
	}
	fmt.Println("Subject:", email.Subject)
	fmt.Println()
	fmt.Print(email.Text)
	// Output:
	// Subject: Your authnotify verification code
	//
	// Hello,
	//
	// your authnotify verification code is:
	//
	//     493027
	//
	// It is valid for 10 minutes (until 12:10 UTC). Enter it to verify your email address.
	//
	// If you did not sign up for authnotify, ignore this email.
}
