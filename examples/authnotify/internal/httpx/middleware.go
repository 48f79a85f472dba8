package httpx

import (
	"log/slog"
	"net/http"
	"regexp"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/valueobject"
)

// Problems serves mux and turns the plain-text 404 and 405 answers that
// http.ServeMux writes for unknown paths and wrong methods into problem
// responses (keeping the Allow header of a 405). Responses of the routes
// themselves pass untouched.
func Problems(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(&problemWriter{ResponseWriter: w}, r)
	})
}

// problemWriter replaces the body of an error written by the mux itself.
type problemWriter struct {
	http.ResponseWriter
	replaced bool
}

func (p *problemWriter) WriteHeader(status int) {
	if status < 400 || p.replaced {
		p.ResponseWriter.WriteHeader(status)
		return
	}
	p.replaced = true
	detail := "there is nothing at this path"
	if status == http.StatusMethodNotAllowed {
		detail = "this path does not accept the method; the Allow header lists those it does"
	}
	p.Header().Del("Content-Length")
	WriteProblem(p.ResponseWriter, NewProblem(status, detail))
}

func (p *problemWriter) Write(b []byte) (int, error) {
	if p.replaced {
		return len(b), nil // the mux's text body, already replaced
	}
	return p.ResponseWriter.Write(b)
}

// Recover turns a panic in next into a logged 500 problem; the server
// goes on. http.ErrAbortHandler is re-panicked, as net/http expects.
func Recover(logger *slog.Logger, next http.Handler) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
				panic(v)
			}
			logger.ErrorContext(r.Context(), "http: handler panicked", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("panic", v))
			WriteProblem(w, NewProblem(http.StatusInternalServerError, "something went wrong on our side"))
		}()
		next.ServeHTTP(w, r)
	})
}

// RequestIDHeader carries the correlation ID of a request.
const RequestIDHeader = "X-Request-Id"

var validRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// CorrelationID gives every request a correlation ID: the caller's
// X-Request-Id when it is a sane token, else a new UUID. It is echoed in
// the response and put in the context as aggregate metadata, so that every
// event the request causes carries it through the outbox and the bus.
func CorrelationID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !validRequestID.MatchString(id) {
			id = valueobject.NewID().String()
		}
		w.Header().Set(RequestIDHeader, id)
		md := aggregate.MetadataFromContext(r.Context())
		md.CorrelationID = id
		next.ServeHTTP(w, r.WithContext(aggregate.ContextWithMetadata(r.Context(), md)))
	})
}
