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
//     a field dst does not have (names match exactly, not ignoring case),
//     and a value of the wrong JSON type; the last two name the field in
//     Errors.
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

	// First pass: one object, and only known keys, compared exactly
	// (encoding/json alone would accept "EMAIL" for "email").
	var keys map[string]json.RawMessage
	if p := decodeStrict(body, &keys, vtype); p != nil {
		return p
	}
	if keys == nil {
		return NewProblem(http.StatusBadRequest, "the request body must be a JSON object, it is null")
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
