package valueobject_test

import (
	"errors"
	"fmt"

	"github.com/dddkit/dddkit/valueobject"
)

func ExampleParseEmail() {
	email, err := valueobject.ParseEmail("  Jane.Doe+news@Example.COM ")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(email)
	fmt.Println(email.Local())
	fmt.Println(email.Domain())
	// Output:
	// Jane.Doe+news@example.com
	// Jane.Doe+news
	// example.com
}

// Every constructor returns an *Error naming the field and the reason; the
// HTTP layer turns it into a {"field", "message"} entry of a 400 response.
func ExampleError() {
	_, err := valueobject.ParseEmail("jane.doe@example..com")

	var ve *valueobject.Error
	if errors.As(err, &ve) {
		fmt.Printf("field=%s message=%s\n", ve.Field, ve.Reason)
	}
	fmt.Println(errors.Is(err, valueobject.ErrInvalid))
	fmt.Println(err)
	// Output:
	// field=email message=domain must not contain ".."
	// true
	// valueobject: email: domain must not contain ".."
}

// A command that checks several fields joins their errors; FieldErrors
// lists each, with the field renamed where the request calls it
// differently.
func ExampleFieldErrors() {
	_, emailErr := valueobject.ParseEmail("jane")
	_, pwErr := valueobject.NewPassword("jane1234")
	_, newPwErr := valueobject.NewPassword("12345678")
	err := errors.Join(emailErr, pwErr, valueobject.WithField(newPwErr, "newPassword"))

	for _, fe := range valueobject.FieldErrors(err) {
		fmt.Printf("%s: %s\n", fe.Field, fe.Reason)
	}
	// Output:
	// email: must contain exactly one "@"
	// newPassword: must not be a simple sequence such as "abcdefgh", "87654321" or "qwertyui"
}

func ExampleNewPassword() {
	for _, plain := range []string{"hunter2", "iloveyou", "jane.doe", "aaaaaaaaaa", "correct horse battery staple"} {
		_, err := valueobject.NewPassword(plain, "jane.doe@example.com", "jane.doe")
		switch {
		case errors.Is(err, valueobject.ErrWeakPassword):
			fmt.Println("weak:", err)
		case err != nil:
			fmt.Println("invalid:", err)
		default:
			fmt.Println("accepted")
		}
	}
	// Output:
	// invalid: valueobject: password: must be at least 8 characters long
	// weak: valueobject: password: is too common and easy to guess
	// weak: valueobject: password: must not be the same as the email address or user name
	// weak: valueobject: password: must not be a single repeated character
	// accepted
}

func ExamplePassword() {
	pw, _ := valueobject.NewPassword("correct horse battery staple")
	fmt.Println(pw)
	fmt.Printf("%#v\n", pw)
	fmt.Printf("%+v\n", struct{ Password valueobject.Password }{pw})
	// Output:
	// [REDACTED]
	// valueobject.Password([REDACTED])
	// {Password:[REDACTED]}
}

// Hashes are random (each has its own salt), so this example verifies
// rather than prints one.
func ExampleHasher() {
	hasher, err := valueobject.NewHasher(nil) // OWASP parameters
	if err != nil {
		panic(err)
	}
	pw, err := valueobject.NewPassword("correct horse battery staple")
	if err != nil {
		panic(err)
	}
	hash, err := hasher.Hash(pw) // store this string
	if err != nil {
		panic(err)
	}
	fmt.Println(hash[:31])

	fmt.Println(hasher.Verify(hash, "correct horse battery staple"))
	fmt.Println(hasher.Verify(hash, "Correct horse battery staple"))
	fmt.Println(hasher.NeedsRehash(hash))
	// Output:
	// $argon2id$v=19$m=19456,t=2,p=1$
	// <nil>
	// valueobject: password does not match
	// false
}

func ExampleParseID() {
	id, err := valueobject.ParseID("0190C4D2-7B1A-7C3E-8F00-123456789012")
	if err != nil {
		panic(err)
	}
	fmt.Println(id)
	fmt.Println(id.Version(), id.Time().UTC().Format("2006-01-02 15:04:05.000"))

	_, err = valueobject.ParseID("00000000-0000-0000-0000-000000000000")
	fmt.Println(err)
	// Output:
	// 0190c4d2-7b1a-7c3e-8f00-123456789012
	// 7 2024-07-18 07:50:46.810
	// valueobject: id: must not be the nil UUID
}
