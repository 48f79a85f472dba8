package domain

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"math"
	texttemplate "text/template"
)

//go:embed templates
var templateFS embed.FS

// DefaultProduct is the product name the emails use.
const DefaultProduct = "authnotify"

// subjects of the emails; %s is the product name.
var subjects = map[Kind]string{
	KindVerificationCode: "Your %s verification code",
	KindNewCode:          "Your new %s verification code",
	KindWelcome:          "Welcome to %s",
	KindPasswordChanged:  "Your %s password was changed",
	KindPasswordReset:    "Reset your %s password",
}

// Templates renders emails: for each [Kind] a text template
// (templates/<kind>.txt.tmpl, text/template) and an HTML one
// (templates/<kind>.html.tmpl, html/template, escaping everything it
// inserts). It is safe for concurrent use.
type Templates struct {
	product string
	text    map[Kind]*texttemplate.Template
	html    map[Kind]*htmltemplate.Template
}

// NewTemplates parses the embedded templates; product names the service
// in the emails ("" means [DefaultProduct]). It fails if a kind lacks a
// template.
func NewTemplates(product string) (*Templates, error) {
	if product == "" {
		product = DefaultProduct
	}
	t := &Templates{product: product, text: map[Kind]*texttemplate.Template{}, html: map[Kind]*htmltemplate.Template{}}
	layout, err := htmltemplate.ParseFS(templateFS, "templates/layout.html.tmpl")
	if err != nil {
		return nil, fmt.Errorf("notification: templates: %w", err)
	}
	var errs []error
	for _, k := range Kinds() {
		txt, err := texttemplate.New(string(k)+".txt.tmpl").Option("missingkey=error").ParseFS(templateFS, "templates/"+string(k)+".txt.tmpl")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		l, err := layout.Clone()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		html, err := l.Option("missingkey=error").ParseFS(templateFS, "templates/"+string(k)+".html.tmpl")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.text[k], t.html[k] = txt, html
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("notification: templates: %w", err)
	}
	return t, nil
}

// Data is what the templates see.
type Data struct {
	Product string
	To      string
	// Code and its validity, for the code kinds.
	Code             string
	ExpiresInMinutes int
	ExpiresAt        string // e.g. "12:10 UTC"
	// When the event happened, e.g. "1 March 2026, 12:00 UTC".
	OccurredAt string
}

// Render renders the email for job; code is the opened one-time code for
// the kinds that carry one and is ignored otherwise.
func (t *Templates) Render(job EmailJob, code string) (Email, error) {
	if err := job.Validate(); err != nil {
		return Email{}, err
	}
	if job.Kind.HasCode() && code == "" {
		return Email{}, fmt.Errorf("notification: render %s email %q: no code", job.Kind, job.ID)
	}
	d := Data{Product: t.product, To: job.To}
	if job.Kind.HasCode() {
		d.Code = code
		if !job.CodeExpiresAt.IsZero() {
			d.ExpiresAt = job.CodeExpiresAt.UTC().Format("15:04 MST")
			if !job.OccurredAt.IsZero() {
				d.ExpiresInMinutes = int(math.Round(job.CodeExpiresAt.Sub(job.OccurredAt).Minutes()))
			}
		}
	}
	if !job.OccurredAt.IsZero() {
		d.OccurredAt = job.OccurredAt.UTC().Format("2 January 2006, 15:04 MST")
	}
	var text, html bytes.Buffer
	if err := t.text[job.Kind].Execute(&text, d); err != nil {
		return Email{}, fmt.Errorf("notification: render %s text: %w", job.Kind, err)
	}
	if err := t.html[job.Kind].ExecuteTemplate(&html, "layout", d); err != nil {
		return Email{}, fmt.Errorf("notification: render %s html: %w", job.Kind, err)
	}
	return Email{
		To:             job.To,
		Subject:        fmt.Sprintf(subjects[job.Kind], t.product),
		Text:           text.String(),
		HTML:           html.String(),
		IdempotencyKey: job.ID,
		Kind:           job.Kind,
	}, nil
}
