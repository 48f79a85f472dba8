package adapters

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/resend/resend-go/v3"

	"github.com/dddkit/dddkit/examples/authnotify/notification/app"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

// DefaultResendBaseURL is Resend's API.
const DefaultResendBaseURL = "https://api.resend.com/"

// ResendConfig configures [NewResend].
type ResendConfig struct {
	// APIKey is the Resend API key. Required.
	APIKey string
	// From is the sender, "Name <address>" or an address. Required.
	From string
	// BaseURL is the API's address; "" means [DefaultResendBaseURL].
	// Tests point it at an httptest server.
	BaseURL string
	// HTTPClient sends the requests; nil means a client with a 15-second
	// timeout. Its Transport is wrapped to see response statuses.
	HTTPClient *http.Client
	// Logger gets a line for every email refused for good; nil means
	// slog.Default().
	Logger *slog.Logger
	// Clock is used to read an HTTP-date retry-after; nil means time.Now.
	Clock func() time.Time
}

// Resend is an [app.EmailSender] on Resend's official Go SDK. Every email
// carries its job ID as Resend idempotency key, so a job that runs twice
// sends once. Failures are classified for the job queue: 429 and 5xx
// (and network errors) are retryable, with the retry-after header as hint
// when there is one; any other 4xx is permanent and logged.
type Resend struct {
	client *resend.Client
	from   string
	logger *slog.Logger
	clock  func() time.Time
}

// NewResend returns a sender; every problem of cfg is reported at once.
func NewResend(cfg ResendConfig) (*Resend, error) {
	var errs []error
	if strings.TrimSpace(cfg.APIKey) == "" {
		errs = append(errs, errors.New("notification: NewResend: no API key"))
	}
	if strings.TrimSpace(cfg.From) == "" {
		errs = append(errs, errors.New("notification: NewResend: no sender (From)"))
	}
	base := cfg.BaseURL
	if base == "" {
		base = DefaultResendBaseURL
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("notification: NewResend: base URL %q is not an http(s) URL", cfg.BaseURL))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 15 * time.Second}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	hc.Transport = statusRecorder{next: next}
	client := resend.NewCustomClient(hc, cfg.APIKey)
	client.BaseURL = u
	r := &Resend{client: client, from: cfg.From, logger: cfg.Logger, clock: cfg.Clock}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	if r.clock == nil {
		r.clock = time.Now
	}
	return r, nil
}

// Send implements app.EmailSender.
func (r *Resend) Send(ctx context.Context, e domain.Email) error {
	var resp response
	ctx = context.WithValue(ctx, responseKey{}, &resp)
	req := &resend.SendEmailRequest{
		From: r.from, To: []string{e.To}, Subject: e.Subject, Text: e.Text, Html: e.HTML,
		Tags: []resend.Tag{{Name: "kind", Value: string(e.Kind)}},
	}
	_, err := r.client.Emails.SendWithOptions(ctx, req, &resend.SendEmailOptions{IdempotencyKey: e.IdempotencyKey})
	if err == nil {
		return nil
	}
	err = fmt.Errorf("notification: resend: %s email %s: %w", e.Kind, e.IdempotencyKey, err)
	switch {
	case resp.status == 0: // no answer: network trouble, a timeout
		return err
	case resp.status == http.StatusTooManyRequests || resp.status >= 500:
		if d, ok := ParseRetryAfter(resp.retryAfter, r.clock()); ok {
			return app.RetryAfter(err, d)
		}
		return err
	case resp.status >= 400:
		r.logger.ErrorContext(ctx, "notification: Resend refused an email; it will not be retried",
			slog.Int("status", resp.status), slog.String("kind", string(e.Kind)),
			slog.String("idempotencyKey", e.IdempotencyKey), slog.Any("error", err))
		return app.Permanent(err)
	}
	return err // a 2xx the SDK could not read: let the queue retry; the idempotency key keeps it at one email
}

// response is what the transport saw of Resend's answer: the SDK's errors
// do not carry the status of most failures nor the retry-after header.
type response struct {
	status     int
	retryAfter string
}

type responseKey struct{}

// statusRecorder notes the status and retry-after header of each
// response in the *response its request's context carries.
type statusRecorder struct{ next http.RoundTripper }

func (s statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(req)
	if rec, ok := req.Context().Value(responseKey{}).(*response); ok && err == nil {
		rec.status = resp.StatusCode
		rec.retryAfter = resp.Header.Get("Retry-After")
	}
	return resp, err
}
