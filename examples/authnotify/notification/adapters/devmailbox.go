package adapters

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dddkit/dddkit/examples/authnotify/internal/httpx"
	"github.com/dddkit/dddkit/examples/authnotify/notification/domain"
)

// SentEmail is an email the [DevMailbox] "sent".
type SentEmail struct {
	To             string
	Subject        string
	Text           string
	HTML           string
	IdempotencyKey string
	SentAt         time.Time
}

// DevMailboxConfig configures a [DevMailbox]; nil means the defaults.
type DevMailboxConfig struct {
	// Logger gets one line per email, text included (this is the
	// development mailbox: the code is meant to be read); nil means
	// slog.Default().
	Logger *slog.Logger
	// Clock stamps SentAt; nil means time.Now.
	Clock func() time.Time
	// Capacity is how many emails are kept; older ones are dropped.
	// 0 means 1000.
	Capacity int
}

// DevMailbox is the email sender of the embedded default: it delivers
// nothing, keeps every email in memory and logs it. Like a real provider
// it honours idempotency keys: a second email with a key it has seen is
// not sent again. It is safe for concurrent use.
type DevMailbox struct {
	logger   *slog.Logger
	clock    func() time.Time
	capacity int

	mu   sync.Mutex
	sent []SentEmail
	keys map[string]bool
}

// NewDevMailbox returns an empty mailbox.
func NewDevMailbox(cfg *DevMailboxConfig) *DevMailbox {
	var c DevMailboxConfig
	if cfg != nil {
		c = *cfg
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Capacity <= 0 {
		c.Capacity = 1000
	}
	return &DevMailbox{logger: c.Logger, clock: c.Clock, capacity: c.Capacity, keys: map[string]bool{}}
}

// Send implements app.EmailSender.
func (m *DevMailbox) Send(ctx context.Context, e domain.Email) error {
	m.mu.Lock()
	if e.IdempotencyKey != "" && m.keys[e.IdempotencyKey] {
		m.mu.Unlock()
		m.logger.DebugContext(ctx, "dev mailbox: duplicate email dropped", slog.String("idempotencyKey", e.IdempotencyKey))
		return nil
	}
	s := SentEmail{To: e.To, Subject: e.Subject, Text: e.Text, HTML: e.HTML, IdempotencyKey: e.IdempotencyKey, SentAt: m.clock()}
	if e.IdempotencyKey != "" {
		m.keys[e.IdempotencyKey] = true
	}
	if len(m.sent) >= m.capacity {
		old := m.sent[0]
		delete(m.keys, old.IdempotencyKey)
		m.sent = append(m.sent[:0:0], m.sent[1:]...)
	}
	m.sent = append(m.sent, s)
	m.mu.Unlock()
	m.logger.InfoContext(ctx, "dev mailbox: email sent",
		slog.String("to", s.To), slog.String("subject", s.Subject), slog.String("text", s.Text))
	return nil
}

// Sent returns the emails sent so far, oldest first.
func (m *DevMailbox) Sent() []SentEmail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]SentEmail(nil), m.sent...)
}

type sentEmailJSON struct {
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Text    string    `json:"text"`
	SentAt  time.Time `json:"sentAt"`
}

// Handler serves GET /dev/emails: every email sent so far, oldest first,
// as [{"to", "subject", "text", "sentAt"}].
func (m *DevMailbox) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		sent := m.Sent()
		out := make([]sentEmailJSON, 0, len(sent))
		for _, s := range sent {
			out = append(out, sentEmailJSON{To: s.To, Subject: s.Subject, Text: s.Text, SentAt: s.SentAt})
		}
		w.Header().Set("Cache-Control", "no-store")
		httpx.WriteJSON(w, http.StatusOK, out)
	})
}
