package app_test

import (
	"context"
	"fmt"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/examples/authnotify/auth/adapters"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/contracts/authevents"
	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
	"github.com/dddkit/dddkit/valueobject"
)

// The auth module wired on a command bus with the in-memory repository.
// The event sink stands in for the outbox; here it opens the sealed code,
// as the notification module does before emailing it.
func Example() {
	key, _ := fieldcrypt.ParseKey(fieldcrypt.GenerateKey()) // FIELD_ENCRYPTION_KEY
	cipher, _ := fieldcrypt.New(key)
	factory, _ := domain.NewFactory(cipher, cipher.DeriveKey("authnotify/otp-hash/v1"), nil)

	var code string
	sink := adapters.SinkFunc(func(_ context.Context, events ...aggregate.Envelope) error {
		for _, e := range events {
			fmt.Println("event:", e.Name)
			if reg, ok := e.Payload.(authevents.UserRegistered); ok {
				code, _ = cipher.Open(reg.EncryptedCode, reg.UserID)
			}
		}
		return nil
	})
	users, _ := adapters.NewMemory(factory, sink)
	tokens, _ := app.NewTokens([]app.Key{{Secret: []byte("an example secret of at least 32 bytes")}}, nil) // JWT_SECRET
	hasher, _ := valueobject.NewHasher(&valueobject.Argon2Params{Memory: 64, Iterations: 1})

	bus, _ := cqrs.New(&cqrs.Config{
		CommandMiddleware: []cqrs.Middleware{cqrs.Recover(), cqrs.Validation()},
		QueryMiddleware:   []cqrs.Middleware{cqrs.Recover(), cqrs.Validation()},
	})
	if err := app.Register(bus, app.Deps{Users: users, Factory: factory, Tokens: tokens, Hasher: hasher, Activity: adapters.NewMemoryActivity()}); err != nil {
		panic(err)
	}
	if err := bus.Validate(); err != nil {
		panic(err)
	}

	ctx := context.Background()
	_, err := cqrs.Send[app.Registration](ctx, bus, app.RegisterUser{Email: "ada@example.com", Password: "password"})
	fmt.Println(err)

	reg, _ := cqrs.Send[app.Registration](ctx, bus, app.RegisterUser{Email: "ada@example.com", Password: "correct horse"})
	fmt.Println(cqrs.Exec(ctx, bus, app.VerifyEmail{Email: reg.Email, Code: code, RegistrationToken: reg.RegistrationToken}))

	tok, _ := cqrs.Ask[app.AccessToken](ctx, bus, app.Login{Email: "ada@example.com", Password: "correct horse"})
	claims, _ := tokens.Verify(tok.Token)
	me, _ := cqrs.Ask[app.UserView](ctx, bus, app.Me{UserID: claims.Subject})
	fmt.Println(me.Email, me.Status, tok.TokenType, tok.ExpiresIn)
	// Output:
	// cqrs: invalid command auth.register_user: auth: invalid input: valueobject: password: is too common and easy to guess
	// event: auth.user_registered
	// event: auth.user_verified
	// <nil>
	// ada@example.com verified Bearer 15m0s
}
