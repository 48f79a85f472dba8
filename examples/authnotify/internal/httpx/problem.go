// Package httpx holds the example's HTTP plumbing: RFC 9457 problem
// responses, the {"message", "data"} success envelope, strict JSON request
// decoding, and middleware that keeps every error answer in
// application/problem+json (unknown routes, wrong methods, panics) and
// stamps each request's correlation ID on the events it causes.
package httpx

import (
	"encoding/json"
	"net/http"
)

// Media types.
const (
	ContentTypeJSON    = "application/json"
	ContentTypeProblem = "application/problem+json"
)

// Problem is an RFC 9457 problem details object. Errors lists the bad
// fields of a validation problem.
type Problem struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Errors   []FieldError `json:"errors,omitempty"`
}

// FieldError is one entry of [Problem.Errors].
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// BlankType is the problem type that means "nothing more than the HTTP
// status"; its title is the status text.
const BlankType = "about:blank"

// NewProblem returns a problem of [BlankType] for status, titled with the
// status text.
func NewProblem(status int, detail string) *Problem {
	return &Problem{Type: BlankType, Title: http.StatusText(status), Status: status, Detail: detail}
}

// Error makes a Problem usable as an error: its detail, or its title.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Detail
	}
	return p.Title
}

// WriteProblem writes p with its status as application/problem+json.
func WriteProblem(w http.ResponseWriter, p *Problem) {
	if p.Type == "" {
		p.Type = BlankType
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	writeJSON(w, p.Status, ContentTypeProblem, p)
}

// Envelope is the body of every success response.
type Envelope struct {
	Message string `json:"message"`
	Data    any    `json:"data"`
}

// Respond writes {"message": message, "data": data} with status; a nil
// data is written as null.
func Respond(w http.ResponseWriter, status int, message string, data any) {
	writeJSON(w, status, ContentTypeJSON, Envelope{Message: message, Data: data})
}

// WriteJSON writes v as JSON with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	writeJSON(w, status, ContentTypeJSON, v)
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil { // only for values that cannot be JSON: a programming error
		status = http.StatusInternalServerError
		contentType = ContentTypeProblem
		body, _ = json.Marshal(NewProblem(status, "the response could not be encoded"))
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
