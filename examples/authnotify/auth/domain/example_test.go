package domain_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
	"github.com/dddkit/dddkit/valueobject"
)

// Sign-up with a one-time code: every rule lives in the aggregate; time
// and codes are injected, so the example is deterministic.
func Example() {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cipher, _ := fieldcrypt.New(bytes.Repeat([]byte{1}, fieldcrypt.KeySize))
	users, _ := domain.NewFactory(cipher, cipher.DeriveKey("authnotify/otp-hash/v1"), &domain.FactoryConfig{
		Clock: func() time.Time { return now },
		Codes: func() (string, error) { return "493027", nil },
	})

	email, _ := valueobject.ParseEmail("Ada@Example.com")
	hasher, _ := valueobject.NewHasher(&valueobject.Argon2Params{Memory: 64, Iterations: 1})
	pw, _ := valueobject.NewPassword("correct horse")
	hash, _ := hasher.Hash(pw)
	u, _ := users.Register(valueobject.NewID(), email, hash)
	fmt.Println(u.Email(), u.Status(), "code expires", u.CodeExpiresAt().Format(time.Kitchen))

	fmt.Println("login:", u.Authenticate("correct horse", hasher))
	fmt.Println("wrong code:", u.Verify("000000", u.IssuedRegistrationToken()))
	now = now.Add(2 * time.Minute)
	fmt.Println("resend:", u.RequestNewCode())
	fmt.Println("right code:", u.Verify("493027", u.IssuedRegistrationToken()))
	fmt.Println("login:", u.Authenticate("correct horse", hasher))

	for _, e := range u.Changes() {
		fmt.Println(e.Version, e.Name, e.OccurredAt.Format(time.Kitchen))
	}
	// Output:
	// ada@example.com unverified code expires 12:10PM
	// login: auth: email address is not verified
	// wrong code: auth: verification code is not valid
	// resend: <nil>
	// right code: <nil>
	// login: <nil>
	// 1 auth.user_registered 12:00PM
	// 2 auth.code_verification_failed 12:00PM
	// 3 auth.user_otp_requested 12:02PM
	// 4 auth.user_verified 12:02PM
}
