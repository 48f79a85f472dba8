// Package ports is the auth module's HTTP port: the handlers of the
// /auth endpoints. Each one decodes and checks the request body, builds a
// command or query, dispatches it on the cqrs bus and turns the result or
// error into the HTTP contract of the example (README): success bodies
// {"message", "data"}, errors as RFC 9457 application/problem+json.
//
// Nothing here knows a business rule; errors are mapped by their
// sentinels (see [HTTP.Mount] for the table).
package ports

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/cqrs"
	"github.com/dddkit/dddkit/examples/authnotify/auth/app"
	"github.com/dddkit/dddkit/examples/authnotify/auth/domain"
	"github.com/dddkit/dddkit/examples/authnotify/internal/hashlimit"
	"github.com/dddkit/dddkit/examples/authnotify/internal/httpx"
	"github.com/dddkit/dddkit/examples/authnotify/internal/throttle"
	"github.com/dddkit/dddkit/valueobject"
)

// DefaultProblemTypeBase is where the problem types of this API are
// documented; a problem's type is the base followed by a slug such as
// "invalid-code".
const DefaultProblemTypeBase = "https://github.com/dddkit/dddkit/blob/main/examples/authnotify/docs/problems.md#"

// Config configures [NewHTTP]. The zero value (or nil) means the
// defaults.
type Config struct {
	// Logger gets a line for every 5xx answer; nil means slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; 0 means 1 MiB.
	MaxBodyBytes int64
	// ProblemTypeBase prefixes the type of every problem that is more than
	// its HTTP status; "" means DefaultProblemTypeBase.
	ProblemTypeBase string
}

// HTTP serves the auth endpoints.
type HTTP struct {
	bus    *cqrs.Bus
	logger *slog.Logger
	dec    httpx.Decoder
	base   string
}

// NewHTTP returns the auth HTTP port dispatching on bus, whose auth
// handlers must be registered (app.Register); bearer tokens are checked
// with the app.Authenticate query.
func NewHTTP(bus *cqrs.Bus, cfg *Config) (*HTTP, error) {
	var errs []error
	if bus == nil {
		errs = append(errs, errors.New("auth/ports: nil bus"))
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("auth/ports: Config.MaxBodyBytes is negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.ProblemTypeBase == "" {
		c.ProblemTypeBase = DefaultProblemTypeBase
	}
	return &HTTP{
		bus:    bus,
		logger: c.Logger,
		dec:    httpx.Decoder{MaxBytes: c.MaxBodyBytes, ValidationType: c.ProblemTypeBase + "validation"},
		base:   c.ProblemTypeBase,
	}, nil
}

// Mount registers the routes on mux:
//
//	POST  /auth/register                  201  RegisterUser
//	POST  /auth/verify                    200  VerifyEmail
//	POST  /auth/resend-verification-code  202  ResendCode
//	POST  /auth/login                     200  Login
//	PATCH /auth/password                  200  ChangePassword (bearer token)
//	POST  /auth/password/forgot           202  RequestPasswordReset
//	POST  /auth/password/reset            200  ResetPassword
//	GET   /auth/me                        200  Me (bearer token)
//	GET   /auth/me/activity               200  Activity (bearer token; eventually consistent)
//
// Errors: bad input 400 (415 wrong Content-Type, 413 body over the
// limit); ErrInvalidCode and ErrCodeExpired 400; ErrResendTooSoon (a
// registration again within the code cooldown) 429 with Retry-After; missing, bad or expired
// token and ErrInvalidCredentials 401; ErrNotVerified 403;
// ErrEmailTaken, ErrAlreadyVerified and a lost concurrency race 409;
// ErrTooManyAttempts and throttle.ErrThrottled (with Retry-After) 429;
// anything else 500, logged.
func (h *HTTP) Mount(mux *http.ServeMux) {
	mux.HandleFunc("POST /auth/register", h.register)
	mux.HandleFunc("POST /auth/verify", h.verify)
	mux.HandleFunc("POST /auth/resend-verification-code", h.resend)
	mux.HandleFunc("POST /auth/login", h.login)
	mux.HandleFunc("PATCH /auth/password", h.authenticated(h.changePassword))
	mux.HandleFunc("GET /auth/me", h.authenticated(h.me))
	mux.HandleFunc("GET /auth/me/activity", h.authenticated(h.activity))
	mux.HandleFunc("POST /auth/password/forgot", h.forgotPassword)
	mux.HandleFunc("POST /auth/password/reset", h.resetPassword)
}

// Handler returns the routes of [HTTP.Mount] on a mux of their own,
// wrapped so that unknown paths, wrong methods and panics are answered
// with problems too and every request gets a correlation ID.
func (h *HTTP) Handler() http.Handler {
	mux := http.NewServeMux()
	h.Mount(mux)
	return httpx.CorrelationID(httpx.Recover(h.logger, httpx.Problems(mux)))
}

// Request and response bodies. Pointer fields tell absent from empty.

type credentialsRequest struct {
	Email    *string `json:"email"`
	Password *string `json:"password"`
}

type verifyRequest struct {
	Email             *string `json:"email"`
	Code              *string `json:"code"`
	RegistrationToken *string `json:"registrationToken"`
}

type resendRequest struct {
	Email *string `json:"email"`
}

type changePasswordRequest struct {
	CurrentPassword *string `json:"currentPassword"`
	NewPassword     *string `json:"newPassword"`
}

type resetPasswordRequest struct {
	Email       *string `json:"email"`
	Code        *string `json:"code"`
	NewPassword *string `json:"newPassword"`
}

type registeredResponse struct {
	ID                string `json:"id"`
	Email             string `json:"email"`
	RegistrationToken string `json:"registrationToken"`
}

type tokenResponse struct {
	AccessToken string `json:"accessToken"`
	TokenType   string `json:"tokenType"`
	ExpiresIn   int64  `json:"expiresIn"` // seconds
}

type meResponse struct {
	ID         string     `json:"id"`
	Email      string     `json:"email"`
	Status     string     `json:"status"`
	CreatedAt  time.Time  `json:"createdAt"`
	VerifiedAt *time.Time `json:"verifiedAt"`
}

func (h *HTTP) register(w http.ResponseWriter, r *http.Request) {
	var req credentialsRequest
	if !h.decode(w, r, &req) || !h.require(w, field{"email", req.Email}, field{"password", req.Password}) {
		return
	}
	reg, err := cqrs.Send[app.Registration](r.Context(), h.bus, app.RegisterUser{Email: *req.Email, Password: app.Secret(*req.Password)})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	respond(w, http.StatusCreated,
		fmt.Sprintf("Account created. We sent a 6-digit verification code to %s; it is valid for %d minutes.", reg.Email, int(domain.CodeTTL.Minutes())),
		registeredResponse{ID: reg.UserID, Email: reg.Email, RegistrationToken: reg.RegistrationToken.Reveal()})
}

func (h *HTTP) verify(w http.ResponseWriter, r *http.Request) {
	var req verifyRequest
	if !h.decode(w, r, &req) || !h.require(w, field{"email", req.Email}, field{"code", req.Code}, field{"registrationToken", req.RegistrationToken}) {
		return
	}
	if err := cqrs.Exec(r.Context(), h.bus, app.VerifyEmail{Email: *req.Email, Code: *req.Code, RegistrationToken: app.Secret(*req.RegistrationToken)}); err != nil {
		h.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, "Email address verified. You can log in now.", nil)
}

func (h *HTTP) resend(w http.ResponseWriter, r *http.Request) {
	var req resendRequest
	if !h.decode(w, r, &req) || !h.require(w, field{"email", req.Email}) {
		return
	}
	if err := cqrs.Exec(r.Context(), h.bus, app.ResendCode{Email: *req.Email}); err != nil {
		h.fail(w, r, err)
		return
	}
	respond(w, http.StatusAccepted, "If an unverified account exists for this address, a new code is on its way.", nil)
}

func (h *HTTP) login(w http.ResponseWriter, r *http.Request) {
	var req credentialsRequest
	if !h.decode(w, r, &req) || !h.require(w, field{"email", req.Email}, field{"password", req.Password}) {
		return
	}
	tok, err := cqrs.Ask[app.AccessToken](r.Context(), h.bus, app.Login{
		Email: *req.Email, Password: app.Secret(*req.Password), ClientAddress: clientAddress(r),
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, "Logged in.", tokenResponse{
		AccessToken: tok.Token,
		TokenType:   tok.TokenType,
		ExpiresIn:   int64(tok.ExpiresIn / time.Second),
	})
}

// clientAddress is the host part of the request's remote address: the
// direct peer. Behind a reverse proxy that is the proxy; see the README.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *HTTP) changePassword(w http.ResponseWriter, r *http.Request, userID string) {
	var req changePasswordRequest
	if !h.decode(w, r, &req) || !h.require(w, field{"currentPassword", req.CurrentPassword}, field{"newPassword", req.NewPassword}) {
		return
	}
	err := cqrs.Exec(r.Context(), h.bus, app.ChangePassword{
		UserID:          userID,
		CurrentPassword: app.Secret(*req.CurrentPassword),
		NewPassword:     app.Secret(*req.NewPassword),
	})
	if err != nil {
		h.failAuthenticated(w, r, err)
		return
	}
	respond(w, http.StatusOK, "Password changed. Use the new one from now on.", nil)
}

func (h *HTTP) forgotPassword(w http.ResponseWriter, r *http.Request) {
	var req resendRequest
	if !h.decode(w, r, &req) || !h.require(w, field{"email", req.Email}) {
		return
	}
	if err := cqrs.Exec(r.Context(), h.bus, app.RequestPasswordReset{Email: *req.Email}); err != nil {
		h.fail(w, r, err)
		return
	}
	respond(w, http.StatusAccepted, "If a verified account exists for this address, a password reset code is on its way.", nil)
}

func (h *HTTP) resetPassword(w http.ResponseWriter, r *http.Request) {
	var req resetPasswordRequest
	if !h.decode(w, r, &req) || !h.require(w, field{"email", req.Email}, field{"code", req.Code}, field{"newPassword", req.NewPassword}) {
		return
	}
	err := cqrs.Exec(r.Context(), h.bus, app.ResetPassword{Email: *req.Email, Code: *req.Code, NewPassword: app.Secret(*req.NewPassword)})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, "Password reset. Log in with the new one; older access tokens no longer work.", nil)
}

func (h *HTTP) me(w http.ResponseWriter, r *http.Request, userID string) {
	v, err := cqrs.Ask[app.UserView](r.Context(), h.bus, app.Me{UserID: userID})
	if err != nil {
		h.failAuthenticated(w, r, err)
		return
	}
	respond(w, http.StatusOK, "Your account.", meResponse{
		ID: v.ID, Email: v.Email, Status: v.Status, CreatedAt: v.CreatedAt, VerifiedAt: v.VerifiedAt,
	})
}

// activityEntry is one element of the data of GET /auth/me/activity.
type activityEntry struct {
	Type string    `json:"type"`
	At   time.Time `json:"at"`
}

// activity answers the caller's own account activity, oldest first. The
// list comes from a read model that a projection of the published events
// keeps: it is eventually consistent, so a change made a moment ago may
// not be in it yet.
func (h *HTTP) activity(w http.ResponseWriter, r *http.Request, userID string) {
	entries, err := cqrs.Ask[[]app.ActivityEntry](r.Context(), h.bus, app.Activity{UserID: userID})
	if err != nil {
		h.failAuthenticated(w, r, err)
		return
	}
	data := make([]activityEntry, len(entries))
	for i, e := range entries {
		data[i] = activityEntry{Type: e.Type, At: e.At.UTC()}
	}
	respond(w, http.StatusOK, "Your account's activity, oldest first. It can lag a moment behind.", data)
}

func respond(w http.ResponseWriter, status int, message string, data any) {
	w.Header().Set("Cache-Control", "no-store")
	httpx.Respond(w, status, message, data)
}

// field is a required request field after decoding: nil means absent.
type field struct {
	name string
	v    *string
}

// decode reads the body into req, or answers with the problem.
func (h *HTTP) decode(w http.ResponseWriter, r *http.Request, req any) bool {
	if p := h.dec.Decode(w, r, req); p != nil {
		h.problem(w, p)
		return false
	}
	return true
}

// require answers 400 naming every absent (or null) field.
func (h *HTTP) require(w http.ResponseWriter, fields ...field) bool {
	var missing []httpx.FieldError
	for _, f := range fields {
		if f.v == nil {
			missing = append(missing, httpx.FieldError{Field: f.name, Message: "is required"})
		}
	}
	if len(missing) > 0 {
		h.problem(w, httpx.ValidationProblem(h.base+"validation", "required fields are missing", missing...))
		return false
	}
	return true
}

// authenticated checks the bearer token (app.Authenticate: signature,
// expiry, and that no password change revoked it) and passes the user ID
// on.
func (h *HTTP) authenticated(next func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="authnotify"`)
			h.problem(w, &httpx.Problem{Type: h.base + "unauthorized", Title: "Authentication required.", Status: http.StatusUnauthorized,
				Detail: `send the access token from /auth/login as "Authorization: Bearer <token>"`})
			return
		}
		claims, err := cqrs.Ask[app.Claims](r.Context(), h.bus, app.Authenticate{Token: app.Secret(token)})
		switch {
		case errors.Is(err, app.ErrTokenExpired):
			h.invalidToken(w, "the access token has expired; log in again")
			return
		case errors.Is(err, app.ErrTokenRevoked):
			h.invalidToken(w, "the password was changed after this access token was issued; log in again")
			return
		case errors.Is(err, app.ErrInvalidToken):
			h.invalidToken(w, "the access token is not valid; log in again")
			return
		case err != nil:
			h.fail(w, r, err)
			return
		}
		next(w, r, claims.Subject)
	}
}

func (h *HTTP) invalidToken(w http.ResponseWriter, detail string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="authnotify", error="invalid_token"`)
	h.problem(w, &httpx.Problem{Type: h.base + "invalid-token", Title: "The access token is not valid.", Status: http.StatusUnauthorized, Detail: detail})
}

// failAuthenticated is fail for routes behind a token: a user that no
// longer exists, or a subject that is not a user ID, means the token is
// no good.
func (h *HTTP) failAuthenticated(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, aggregate.ErrNotFound) || isFieldError(err, "userId") {
		h.invalidToken(w, "the account of this access token does not exist")
		return
	}
	h.fail(w, r, err)
}

func isFieldError(err error, name string) bool {
	for _, fe := range valueobject.FieldErrors(err) {
		if fe.Field == name {
			return true
		}
	}
	return false
}

// isInputError reports whether err is about the request's input: it then
// carries field errors and is a 400.
func isInputError(err error) bool {
	return errors.Is(err, cqrs.ErrValidation) || errors.Is(err, app.ErrInvalidInput) ||
		errors.Is(err, domain.ErrWrongPassword) || errors.Is(err, domain.ErrSamePassword) ||
		errors.Is(err, valueobject.ErrWeakPassword)
}

type rule struct {
	err    error
	status int
	slug   string
	title  string
	detail string
}

var rules = []rule{
	{domain.ErrEmailTaken, http.StatusConflict, "email-taken", "The email address is already registered.",
		"a verified account with this email address exists; log in, or reset the password if you forgot it"},
	{domain.ErrInvalidCode, http.StatusBadRequest, "invalid-code", "The verification code is not valid.",
		"the code or the registration token does not match the latest registration of this address; check them, or register again"},
	{domain.ErrResendTooSoon, http.StatusTooManyRequests, "too-soon", "A code was sent moments ago.",
		fmt.Sprintf("a new code can be sent %d seconds after the last one; try again after the Retry-After delay", int(domain.CodeResendInterval.Seconds()))},
	{domain.ErrCodeExpired, http.StatusBadRequest, "code-expired", "The verification code has expired.",
		fmt.Sprintf("verification codes are valid for %d minutes and this one has expired; request a new one", int(domain.CodeTTL.Minutes()))},
	{domain.ErrTooManyAttempts, http.StatusTooManyRequests, "too-many-attempts", "Too many wrong codes.",
		fmt.Sprintf("this code was entered wrongly %d times and no longer works; request a new one", domain.MaxCodeAttempts)},
	{domain.ErrAlreadyVerified, http.StatusConflict, "already-verified", "The email address is already verified.",
		"this account is verified; log in"},
	{domain.ErrNotVerified, http.StatusForbidden, "not-verified", "The email address is not verified.",
		"enter the code we emailed you at /auth/verify first, or request a new one"},
	{domain.ErrInvalidCredentials, http.StatusUnauthorized, "invalid-credentials", "Invalid email or password.",
		"the email address or the password is wrong"},
	{throttle.ErrThrottled, http.StatusTooManyRequests, "login-throttled", "Too many failed logins.",
		"too many failed logins for this account or from this address; try again after the Retry-After delay"},
	{hashlimit.ErrBusy, http.StatusServiceUnavailable, "busy", "The server is busy.",
		"too many password checks are running at the moment; try again after the Retry-After delay"},
	{aggregate.ErrConcurrencyConflict, http.StatusConflict, "conflict", "The account was changed at the same time.",
		"another request changed this account while yours was handled; try again"},
}

// fail answers with the problem for err.
func (h *HTTP) fail(w http.ResponseWriter, r *http.Request, err error) {
	if isInputError(err) {
		var fields []httpx.FieldError
		for _, fe := range valueobject.FieldErrors(err) {
			fields = append(fields, httpx.FieldError{Field: fe.Field, Message: fe.Reason})
		}
		h.problem(w, httpx.ValidationProblem(h.base+"validation", "some fields are not valid", fields...))
		return
	}
	for _, ru := range rules {
		if errors.Is(err, ru.err) {
			if ru.status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="authnotify"`)
			}
			var ra interface{ RetryAfter() time.Duration }
			if errors.As(err, &ra) {
				w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(ra.RetryAfter().Seconds()))))
			}
			h.problem(w, &httpx.Problem{Type: h.base + ru.slug, Title: ru.title, Status: ru.status, Detail: ru.detail})
			return
		}
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nobody reads the answer.
		h.logger.DebugContext(r.Context(), "http: request canceled", slog.String("path", r.URL.Path))
		h.problem(w, httpx.NewProblem(http.StatusServiceUnavailable, "the request was canceled"))
		return
	}
	h.logger.ErrorContext(r.Context(), "http: request failed",
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	h.problem(w, httpx.NewProblem(http.StatusInternalServerError, "something went wrong on our side; try again later"))
}

func (h *HTTP) problem(w http.ResponseWriter, p *httpx.Problem) {
	w.Header().Set("Cache-Control", "no-store")
	httpx.WriteProblem(w, p)
}
