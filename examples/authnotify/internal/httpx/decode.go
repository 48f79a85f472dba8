package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// DefaultMaxBodyBytes is the largest request body [DecodeJSON] reads: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// ValidationProblem returns a 400 problem listing errs, of type typ.
func ValidationProblem(typ, detail string, errs ...FieldError) *Problem {
	return &Problem{Type: typ, Title: "Your request is not valid.", Status: http.StatusBadRequest, Detail: detail, Errors: errs}
}

// Decoder decodes JSON request bodies strictly. The zero value uses
// [DefaultMaxBodyBytes] and type "about:blank" for validation problems.
type Decoder struct {
	// MaxBytes bounds the body; 0 means DefaultMaxBodyBytes.
	MaxBytes int64
	// ValidationType is the type of the 400 problems that name fields.
	ValidationType string
}

// Decode reads r's body into dst, a pointer to a struct whose fields have
// json tags, and returns nil or the problem to answer with:
//
//   - 415 unless Content-Type is application/json (parameters such as
//     charset=utf-8 are allowed);
//   - 413 for a body over MaxBytes;
//   - 400 for an empty body, malformed JSON, anything but one JSON object,
//     text that is not valid UTF-8 (raw bytes, or a \u escape of half a
//     surrogate pair: encoding/json would turn either into U+FFFD, so that
//     different byte strings decode to the same text), a key that appears
//     twice in one object at any depth (encoding/json would keep the last
//     one), a field dst does not have (names match exactly, not ignoring
//     case), and a value of the wrong JSON type; the last three name the
//     field in Errors.
//
// Fields that are absent stay as they were in dst: use pointer fields to
// tell absent (or null) from empty, and report the missing ones with
// [ValidationProblem].
func (d Decoder) Decode(w http.ResponseWriter, r *http.Request, dst any) *Problem {
	limit := d.MaxBytes
	if limit <= 0 {
		limit = DefaultMaxBodyBytes
	}
	vtype := d.ValidationType
	if vtype == "" {
		vtype = BlankType
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != ContentTypeJSON {
		return NewProblem(http.StatusUnsupportedMediaType, `the request body must be JSON, sent with "Content-Type: application/json"`)
	}
	if r.ContentLength > limit {
		return tooLarge(limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return tooLarge(limit)
		}
		return NewProblem(http.StatusBadRequest, "the request body could not be read")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return NewProblem(http.StatusBadRequest, "the request body must be a JSON object, it is empty")
	}
	if !utf8.Valid(body) {
		return invalidUTF8()
	}

	// First pass: one object, and only known keys, compared exactly
	// (encoding/json alone would accept "EMAIL" for "email").
	var keys map[string]json.RawMessage
	if p := decodeStrict(body, &keys, vtype); p != nil {
		return p
	}
	if keys == nil {
		return NewProblem(http.StatusBadRequest, "the request body must be a JSON object, it is null")
	}
	// The body is valid JSON from here on.
	if loneSurrogate(body) {
		return invalidUTF8()
	}
	if k, ok := duplicateKey(body); ok {
		return ValidationProblem(vtype, "the request has a field more than once",
			FieldError{Field: k, Message: "appears more than once"})
	}
	known := jsonNames(dst)
	var unknown []FieldError
	for k := range keys {
		if !slices.Contains(known, k) {
			unknown = append(unknown, FieldError{Field: k, Message: "is not a known field"})
		}
	}
	if len(unknown) > 0 {
		slices.SortFunc(unknown, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
		return ValidationProblem(vtype, "the request has fields this endpoint does not accept", unknown...)
	}
	// Second pass: the typed decode.
	return decodeStrict(body, dst, vtype)
}

func tooLarge(limit int64) *Problem {
	return NewProblem(http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body must be at most %d bytes", limit))
}

func invalidUTF8() *Problem {
	return NewProblem(http.StatusBadRequest, "the request body must be UTF-8 text; it has bytes or \\u escapes that are not")
}

// duplicateKey returns the first key that appears twice in one object of
// body, valid JSON, at any depth; nested keys are named by their path
// ("a.b"). Keys are compared after decoding, so "e" and "\u0065" are the
// same key.
func duplicateKey(body []byte) (string, bool) {
	type frame struct {
		object    bool
		expectKey bool
		path      string // of this object or array
		key       string // the last key read, in an object
		keys      map[string]struct{}
	}
	var stack []*frame
	// value marks that a value of the innermost object was read, and
	// returns the path of that value.
	value := func() string {
		if len(stack) == 0 {
			return ""
		}
		top := stack[len(stack)-1]
		if !top.object {
			return top.path + "[]"
		}
		top.expectKey = true
		if top.path == "" {
			return top.key
		}
		return top.path + "." + top.key
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err != nil { // io.EOF, or a syntax error the first pass reports
			return "", false
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{object: true, expectKey: true, path: value(), keys: map[string]struct{}{}})
			case '[':
				stack = append(stack, &frame{path: value()})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectKey {
				top := stack[n-1]
				top.expectKey = false
				top.key = v
				if _, dup := top.keys[v]; dup {
					if top.path == "" {
						return v, true
					}
					return top.path + "." + v, true
				}
				top.keys[v] = struct{}{}
				continue
			}
			value()
		default:
			value()
		}
	}
}

// loneSurrogate reports whether a string of body, valid JSON, has a \u
// escape of half a UTF-16 surrogate pair without its other half.
func loneSurrogate(body []byte) bool {
	inString := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case !inString:
			inString = c == '"'
		case c == '"':
			inString = false
		case c == '\\':
			i++
			if i >= len(body) || body[i] != 'u' {
				continue
			}
			r := hex4(body, i+1)
			i += 4
			if !utf16.IsSurrogate(r) {
				continue
			}
			// A high half must be followed by an escaped low half.
			if r >= 0xDC00 || i+6 >= len(body) || body[i+1] != '\\' || body[i+2] != 'u' {
				return true
			}
			if utf16.DecodeRune(r, hex4(body, i+3)) == utf8.RuneError {
				return true
			}
			i += 6
		}
	}
	return false
}

// hex4 decodes the 4 hex digits at body[i:]; -1 if there are none.
func hex4(body []byte, i int) rune {
	if i+4 > len(body) {
		return -1
	}
	var r rune
	for _, c := range body[i : i+4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return -1
		}
	}
	return r
}

func decodeStrict(body []byte, dst any, vtype string) *Problem {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeProblem(err, vtype)
	}
	if err := dec.Decode(new(json.RawMessage)); err != io.EOF {
		return NewProblem(http.StatusBadRequest, "the request body must be a single JSON object, there is more after it")
	}
	return nil
}

func decodeProblem(err error, vtype string) *Problem {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return NewProblem(http.StatusBadRequest, fmt.Sprintf("the request body is not valid JSON (at byte %d): %s", se.Offset, strings.TrimPrefix(se.Error(), "json: ")))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return NewProblem(http.StatusBadRequest, "the request body is not valid JSON: it ends too early")
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		if te.Field == "" {
			return NewProblem(http.StatusBadRequest, fmt.Sprintf("the request body must be a JSON object, it is %s", article(te.Value)))
		}
		return ValidationProblem(vtype, "a field has the wrong type",
			FieldError{Field: te.Field, Message: "must be " + jsonKind(te.Type) + ", not " + article(te.Value)})
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok { // encoding/json has no type for it
		return ValidationProblem(vtype, "the request has fields this endpoint does not accept",
			FieldError{Field: strings.Trim(name, `"`), Message: "is not a known field"})
	}
	return NewProblem(http.StatusBadRequest, "the request body is not valid JSON")
}

// jsonNames returns the JSON names of the fields of the struct dst points to.
func jsonNames(dst any) []string {
	t := reflect.TypeOf(dst)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names = append(names, name)
	}
	return names
}

func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// article turns encoding/json's value kinds ("number", "array") into
// words: "a number", "an array".
func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "bool":
		return "a boolean"
	case "":
		return "something else"
	default:
		return "a " + kind
	}
}
