// Package app is the auth module's application layer: the commands
// ([RegisterUser], [VerifyEmail], [ResendCode], [ChangePassword]) and
// queries ([Login], [Me], [Authenticate]) that its ports dispatch on a
// [cqrs.Bus], their handlers, and the access tokens ([Tokens], JWT HS256
// by github.com/golang-jwt/jwt/v5, with key rotation). A token carries
// its user's credential version, which changes with the password: the
// Authenticate query refuses a token whose version is no longer the
// user's, so tokens die with the password.
//
// Handlers only orchestrate: parse the input into value objects, load the
// [domain.User] through the [domain.Repository], call one of its methods,
// save. Every business rule is in the domain package.
//
// # Wiring
//
//	bus, _ := cqrs.New(&cqrs.Config{CommandMiddleware: ..., QueryMiddleware: ...})
//	tokens, _ := app.NewTokens([]app.Key{{ID: "k1", Secret: secret}}, nil)
//	err := app.Register(bus, app.Deps{Users: repo, Factory: factory, Tokens: tokens, Activity: activity})
//	err = bus.Validate() // Register has declared app.Expectations()
//
// Recommended middleware, outermost first: cqrs.Logging, cqrs.Recover,
// cqrs.Validation, cqrs.Retry (for commands: a save that lost a race with
// another writer is re-run from the load).
//
// # Errors
//
// Bad input gives an error wrapping [ErrInvalidInput] (and, through the
// Validation middleware, cqrs.ErrValidation) whose
// [valueobject.FieldErrors] name every bad field. Business-rule failures
// are the domain package's sentinels. A login for an unknown address gives
// domain.ErrInvalidCredentials, like a wrong password, and takes as long.
// A resend for an unknown, verified or throttled address succeeds and does
// nothing, so that the answer tells nobody which addresses have accounts.
package app
