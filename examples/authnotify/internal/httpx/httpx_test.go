package httpx_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/examples/authnotify/internal/httpx"
)

type request struct {
	Email *string `json:"email"`
	Age   *int    `json:"age"`
	Tags  []string
	Skip  string `json:"-"`
}

func decode(t *testing.T, d httpx.Decoder, contentType, body string) (request, *httpx.Problem) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	var req request
	p := d.Decode(httptest.NewRecorder(), r, &req)
	return req, p
}

func TestDecode(t *testing.T) {
	t.Parallel()
	req, p := decode(t, httpx.Decoder{}, "application/json; charset=utf-8", `{"email":"a@b.c","age":3,"Tags":["x"]}`)
	require.Nil(t, p)
	require.Equal(t, "a@b.c", *req.Email)
	require.Equal(t, 3, *req.Age)
	require.Equal(t, []string{"x"}, req.Tags)

	req, p = decode(t, httpx.Decoder{}, "application/json", `{}`)
	require.Nil(t, p)
	require.Nil(t, req.Email, "absent stays nil")
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	d := httpx.Decoder{MaxBytes: 64, ValidationType: "v"}
	for name, tc := range map[string]struct {
		contentType, body string
		status            int
		field             string
	}{
		"no content type":      {"", `{}`, 415, ""},
		"text/plain":           {"text/plain", `{}`, 415, ""},
		"form":                 {"application/x-www-form-urlencoded", `a=b`, 415, ""},
		"bad media type":       {"application/json; ===", `{}`, 415, ""},
		"too large":            {"application/json", `{"email":"` + strings.Repeat("a", 100) + `"}`, 413, ""},
		"empty":                {"application/json", ``, 400, ""},
		"blank":                {"application/json", "  \n", 400, ""},
		"malformed":            {"application/json", `{"email":}`, 400, ""},
		"truncated":            {"application/json", `{"email":"a"`, 400, ""},
		"array":                {"application/json", `[]`, 400, ""},
		"string":               {"application/json", `"x"`, 400, ""},
		"null":                 {"application/json", `null`, 400, ""},
		"two objects":          {"application/json", `{} {}`, 400, ""},
		"trailing garbage":     {"application/json", `{}x`, 400, ""},
		"unknown field":        {"application/json", `{"email":"a","admin":true}`, 400, "admin"},
		"case-folded field":    {"application/json", `{"EMAIL":"a"}`, 400, "EMAIL"},
		"ignored field by tag": {"application/json", `{"Skip":"a"}`, 400, "Skip"},
		"wrong type string":    {"application/json", `{"email":42}`, 400, "email"},
		"wrong type number":    {"application/json", `{"age":"old"}`, 400, "age"},
		"wrong type array":     {"application/json", `{"Tags":"x"}`, 400, "Tags"},
		"duplicate key":        {"application/json", `{"email":"a@x.io","email":"b@x.io"}`, 400, "email"},
		"duplicate escaped":    {"application/json", `{"email":"a","\u0065mail":"b"}`, 400, "email"},
		"duplicate nested":     {"application/json", `{"Tags":[{"a":1,"a":2}]}`, 400, "Tags[].a"},
		"duplicate deep":       {"application/json", `{"Tags":[[{"x":{"k":1,"k":2}}]]}`, 400, "Tags[][].x.k"},
		"invalid UTF-8":        {"application/json", "{\"email\":\"a\xffb\"}", 400, ""},
		"invalid UTF-8 in key": {"application/json", "{\"e\xc3\":\"a\"}", 400, ""},
		"lone high surrogate":  {"application/json", `{"email":"\ud800"}`, 400, ""},
		"lone low surrogate":   {"application/json", `{"email":"a\udc00b"}`, 400, ""},
		"high then not low":    {"application/json", `{"email":"\ud800\u0041"}`, 400, ""},
		"two high surrogates":  {"application/json", `{"email":"\uD800\uD800"}`, 400, ""},
	} {
		_, p := decode(t, d, tc.contentType, tc.body)
		require.NotNil(t, p, name)
		require.Equal(t, tc.status, p.Status, name)
		require.NotEmpty(t, p.Detail, name)
		if tc.field != "" {
			require.Equal(t, "v", p.Type, name)
			require.Len(t, p.Errors, 1, name)
			require.Equal(t, tc.field, p.Errors[0].Field, name)
			require.NotEmpty(t, p.Errors[0].Message, name)
		} else {
			require.Equal(t, httpx.BlankType, p.Type, name)
		}
	}
}

// Text that is valid UTF-8, escaped or not, and the same key in different
// objects are fine.
func TestDecodeAcceptsValidText(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		`{"email":"p\u00e4ss"}`:           "päss",
		`{"email":"\ud83d\ude00"}`:        "\U0001F600",
		`{"email":"\uFFFD"}`:              "\uFFFD",
		`{"email":"😀 \\ud800"}`:           `😀 \ud800`, // an escaped backslash, not an escape
		`{"email":"x","Tags":[],"age":1}`: "x",
		"{\"email\":\"\xc3\xa4\"}":        "ä",
	} {
		req, p := decode(t, httpx.Decoder{}, "application/json", body)
		require.Nil(t, p, body)
		require.Equal(t, want, *req.Email, body)
	}
	type nested struct {
		A []map[string]int `json:"a"`
	}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"a":[{"k":1},{"k":2}]}`))
	r.Header.Set("Content-Type", "application/json")
	var n nested
	require.Nil(t, (httpx.Decoder{}).Decode(httptest.NewRecorder(), r, &n), "the same key in sibling objects")
	require.Equal(t, []map[string]int{{"k": 1}, {"k": 2}}, n.A)
}

func TestDecodeWrongTypeMessage(t *testing.T) {
	t.Parallel()
	_, p := decode(t, httpx.Decoder{}, "application/json", `{"email":42}`)
	require.Equal(t, "must be a string, not a number", p.Errors[0].Message)
	_, p = decode(t, httpx.Decoder{}, "application/json", `{"email":"x","b":1,"a":2}`)
	require.Equal(t, []httpx.FieldError{{Field: "a", Message: "is not a known field"}, {Field: "b", Message: "is not a known field"}}, p.Errors, "all unknown fields, sorted")
}

func TestDecodeDefaultLimitIsOneMiB(t *testing.T) {
	t.Parallel()
	body := `{"email":"` + strings.Repeat("a", httpx.DefaultMaxBodyBytes) + `"}`
	_, p := decode(t, httpx.Decoder{}, "application/json", body)
	require.Equal(t, http.StatusRequestEntityTooLarge, p.Status)

	// Without Content-Length (chunked), the reader still stops at the limit.
	r := httptest.NewRequest(http.MethodPost, "/", io.MultiReader(strings.NewReader(body)))
	r.ContentLength = -1
	r.Header.Set("Content-Type", "application/json")
	var req request
	p = httpx.Decoder{}.Decode(httptest.NewRecorder(), r, &req)
	require.Equal(t, http.StatusRequestEntityTooLarge, p.Status)
}

func TestWriteProblemAndRespond(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	httpx.WriteProblem(w, &httpx.Problem{Status: 409, Detail: "taken"})
	require.Equal(t, 409, w.Code)
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	require.JSONEq(t, `{"type":"about:blank","title":"Conflict","status":409,"detail":"taken"}`, w.Body.String())

	w = httptest.NewRecorder()
	httpx.Respond(w, 201, "Created.", map[string]string{"id": "1"})
	require.Equal(t, 201, w.Code)
	require.Equal(t, "application/json", w.Header().Get("Content-Type"))
	require.JSONEq(t, `{"message":"Created.","data":{"id":"1"}}`, w.Body.String())

	w = httptest.NewRecorder()
	httpx.Respond(w, 200, "Done.", nil)
	require.JSONEq(t, `{"message":"Done.","data":null}`, w.Body.String())

	w = httptest.NewRecorder()
	httpx.WriteJSON(w, 200, func() {})
	require.Equal(t, 500, w.Code, "unencodable values are a server error, not a panic")
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
}

func TestProblemsForUnknownRoutesAndMethods(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /things", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "own error", http.StatusTeapot) // a route's own answer passes untouched
	})
	h := httpx.Problems(mux)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/nothing", nil))
	require.Equal(t, 404, w.Code)
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	var p httpx.Problem
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	require.Equal(t, 404, p.Status)

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/things", nil))
	require.Equal(t, 405, w.Code)
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	require.Contains(t, w.Header().Get("Allow"), "POST")
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &p))
	require.Equal(t, 405, p.Status)

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/things", nil))
	require.Equal(t, http.StatusTeapot, w.Code)
	require.Equal(t, "own error\n", w.Body.String())
}

func TestRecover(t *testing.T) {
	t.Parallel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := httpx.Recover(logger, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
	require.Equal(t, 500, w.Code)
	require.Equal(t, "application/problem+json", w.Header().Get("Content-Type"))
	require.NotContains(t, w.Body.String(), "boom", "no internals leak")

	abort := httpx.Recover(logger, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }))
	require.PanicsWithValue(t, http.ErrAbortHandler, func() {
		abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	})
}

func TestCorrelationID(t *testing.T) {
	t.Parallel()
	var seen string
	h := httpx.CorrelationID(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		seen = aggregate.MetadataFromContext(r.Context()).CorrelationID
	}))

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("X-Request-Id", "req-123")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, "req-123", seen)
	require.Equal(t, "req-123", w.Header().Get("X-Request-Id"))

	for _, bad := range []string{"", "has space", strings.Repeat("a", 129), "new\nline"} {
		r = httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Request-Id", bad)
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		require.NotEqual(t, bad, seen)
		require.Len(t, seen, 36, "a fresh UUID")
		require.Equal(t, seen, w.Header().Get("X-Request-Id"))
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{}`, `{"email":"a"}`, `[`, `{"age":1e400}`, `{"Tags":[1]}`, "\x00", `{"email":"a","email":"b"}`, `{"email":"\ud800\u"}`, "{\"email\":\"\xff\"}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		var req request
		if p := (httpx.Decoder{}).Decode(httptest.NewRecorder(), r, &req); p != nil {
			require.GreaterOrEqual(t, p.Status, 400)
			require.Less(t, p.Status, 500, "bad input is never a server error")
		}
	})
}
