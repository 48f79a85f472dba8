package eventbus

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// This file holds the reflector behind [Registry.Catalog]: the JSON Schema
// (draft 2020-12) of a payload as encoding/json writes it. It is written
// for this one job rather than taken from a library so that it follows
// encoding/json exactly where generated types depend on it (a nil
// pointer, slice or map is null; a field behind an embedded pointer may
// be absent; the "string" option) and keeps the core package free of
// dependencies.

// schemaDialect is the JSON Schema draft of the catalogue.
const schemaDialect = "https://json-schema.org/draft/2020-12/schema"

// jsonSchema is one JSON Schema. Maps marshal with sorted keys, so a
// schema's JSON is stable.
type jsonSchema struct {
	Dialect              string                 `json:"$schema,omitempty"`
	Ref                  string                 `json:"$ref,omitempty"`
	Title                string                 `json:"title,omitempty"`
	Description          string                 `json:"description,omitempty"`
	Type                 any                    `json:"type,omitempty"` // string or []string
	Format               string                 `json:"format,omitempty"`
	ContentEncoding      string                 `json:"contentEncoding,omitempty"`
	Properties           map[string]*jsonSchema `json:"properties,omitempty"`
	Required             []string               `json:"required,omitempty"`
	Items                *jsonSchema            `json:"items,omitempty"`
	AdditionalProperties *jsonSchema            `json:"additionalProperties,omitempty"`
	AnyOf                []*jsonSchema          `json:"anyOf,omitempty"`
	Defs                 map[string]*jsonSchema `json:"$defs,omitempty"`
}

var timeType = reflect.TypeFor[time.Time]()

// reflector builds the schema of one payload type; named struct types
// other than the root go to $defs.
type reflector struct {
	root  reflect.Type
	names map[reflect.Type]string // struct type → its $defs name
	taken map[string]bool
	defs  map[string]*jsonSchema
}

// payloadSchema returns the schema document of payloads of Go type t.
func payloadSchema(t reflect.Type, title string) *jsonSchema {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	r := &reflector{root: t, names: map[reflect.Type]string{}, taken: map[string]bool{}, defs: map[string]*jsonSchema{}}
	var s *jsonSchema
	if t.Kind() == reflect.Struct && !hasCustomJSON(t) {
		s = r.object(t)
	} else {
		s = r.schema(t)
	}
	s.Dialect = schemaDialect
	s.Title = title
	if len(r.defs) > 0 {
		s.Defs = r.defs
	}
	return s
}

// hasCustomJSON reports whether encoding/json writes t with t's own
// MarshalJSON or MarshalText.
func hasCustomJSON(t reflect.Type) bool {
	enc, _ := customJSON(t, true)
	return enc
}

// schema returns the schema of a value of type t.
func (r *reflector) schema(t reflect.Type) *jsonSchema {
	if t == timeType {
		return &jsonSchema{Type: "string", Format: "date-time"}
	}
	if t.Kind() == reflect.Pointer {
		return nullable(r.schema(t.Elem()))
	}
	if hasCustomJSON(t) {
		if t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType) {
			return &jsonSchema{Description: "any JSON value: " + t.String() + " encodes itself (MarshalJSON)"}
		}
		return &jsonSchema{Type: "string"} // MarshalText
	}
	switch t.Kind() {
	case reflect.Bool:
		return &jsonSchema{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return &jsonSchema{Type: "integer"}
	case reflect.Float32, reflect.Float64:
		return &jsonSchema{Type: "number"}
	case reflect.String:
		return &jsonSchema{Type: "string"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !hasCustomJSON(t.Elem()) && !hasCustomJSON(reflect.PointerTo(t.Elem())) {
			return &jsonSchema{Type: []string{"string", "null"}, ContentEncoding: "base64"}
		}
		return &jsonSchema{Type: []string{"array", "null"}, Items: r.schema(t.Elem())}
	case reflect.Array:
		return &jsonSchema{Type: "array", Items: r.schema(t.Elem())}
	case reflect.Map:
		return &jsonSchema{Type: []string{"object", "null"}, AdditionalProperties: r.schema(t.Elem())}
	case reflect.Struct:
		return r.ref(t)
	default: // interface: any JSON value
		return &jsonSchema{}
	}
}

// ref returns the schema of struct type t: inline when anonymous, a
// reference to $defs when named.
func (r *reflector) ref(t reflect.Type) *jsonSchema {
	if t == r.root {
		return &jsonSchema{Ref: "#"}
	}
	if t.Name() == "" {
		return r.object(t)
	}
	name, ok := r.names[t]
	if !ok {
		name = defName(t.Name())
		if r.taken[name] {
			name = defName(t.String())
		}
		for i := 2; r.taken[name]; i++ {
			name = fmt.Sprintf("%s_%d", defName(t.String()), i)
		}
		r.names[t] = name
		r.taken[name] = true
		r.defs[name] = r.object(t)
	}
	return &jsonSchema{Ref: "#/$defs/" + name}
}

// defName turns a Go type name into a $defs name: letters, digits and
// '_' only, so that it needs no escaping in a reference.
func defName(goName string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			return c
		}
		return '_'
	}, goName)
}

// object returns the schema of struct type t as encoding/json writes it.
func (r *reflector) object(t reflect.Type) *jsonSchema {
	s := &jsonSchema{Type: "object", Properties: map[string]*jsonSchema{}}
	for _, f := range jsonFields(t) {
		fs := r.schema(f.typ)
		if f.quoted {
			fs = &jsonSchema{Type: "string", Description: "a JSON " + typeName(fs) + " inside a string"}
			if f.typ.Kind() == reflect.Pointer {
				fs = nullable(fs)
			}
		}
		s.Properties[f.name] = fs
		if f.required {
			s.Required = append(s.Required, f.name)
		}
	}
	slices.Sort(s.Required)
	return s
}

// nullable returns s that also allows null.
func nullable(s *jsonSchema) *jsonSchema {
	switch typ := s.Type.(type) {
	case string:
		s.Type = []string{typ, "null"}
		return s
	case []string:
		if !slices.Contains(typ, "null") {
			s.Type = append(slices.Clone(typ), "null")
		}
		return s
	}
	if s.Ref == "" && s.AnyOf == nil {
		return s // any JSON value, null included
	}
	return &jsonSchema{AnyOf: []*jsonSchema{s, {Type: "null"}}}
}

// typeName is the JSON type of s for a description.
func typeName(s *jsonSchema) string {
	switch typ := s.Type.(type) {
	case string:
		return typ
	case []string:
		return typ[0]
	}
	return "value"
}

// jsonField is one member of a JSON object as encoding/json writes a
// struct.
type jsonField struct {
	name     string
	typ      reflect.Type
	tagged   bool
	depth    int
	quoted   bool // the ",string" option
	required bool // always present: no omitempty/omitzero, not behind an embedded pointer
}

// jsonFields returns the fields encoding/json writes for struct type t,
// with its rules: json tags name and omit fields, embedded structs
// without a tag name are flattened, and of several fields of one name the
// shallowest wins, a tagged one among equals, else none.
func jsonFields(t reflect.Type) []jsonField {
	var all []jsonField
	var walk func(t reflect.Type, depth int, viaPointer bool, seen map[reflect.Type]bool)
	walk = func(t reflect.Type, depth int, viaPointer bool, seen map[reflect.Type]bool) {
		if seen[t] {
			return
		}
		seen[t] = true
		defer delete(seen, t)
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			ft := sf.Type
			if sf.Anonymous {
				et := ft
				if et.Kind() == reflect.Pointer {
					et = et.Elem()
				}
				if !sf.IsExported() && et.Kind() != reflect.Struct {
					continue
				}
				if !sf.IsExported() && ft.Kind() == reflect.Pointer {
					continue // encoding/json cannot set an unexported embedded pointer
				}
				if name == "" && et.Kind() == reflect.Struct {
					walk(et, depth+1, viaPointer || ft.Kind() == reflect.Pointer, seen)
					continue
				}
			} else if !sf.IsExported() {
				continue
			}
			tagged := name != ""
			if !tagged {
				name = sf.Name
			}
			options := strings.Split(opts, ",")
			quoted := false
			if slices.Contains(options, "string") {
				bt := ft
				if bt.Kind() == reflect.Pointer {
					bt = bt.Elem()
				}
				switch bt.Kind() {
				case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
					reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
					reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
					quoted = !hasCustomJSON(bt)
				}
			}
			all = append(all, jsonField{
				name: name, typ: ft, tagged: tagged, depth: depth, quoted: quoted,
				required: !viaPointer && !slices.Contains(options, "omitempty") && !slices.Contains(options, "omitzero"),
			})
		}
	}
	walk(t, 0, false, map[reflect.Type]bool{})

	byName := map[string][]jsonField{}
	var order []string
	for _, f := range all {
		if _, ok := byName[f.name]; !ok {
			order = append(order, f.name)
		}
		byName[f.name] = append(byName[f.name], f)
	}
	var out []jsonField
	for _, name := range order {
		if f, ok := dominant(byName[name]); ok {
			out = append(out, f)
		}
	}
	return out
}

// dominant picks the field encoding/json writes among fields of one name.
func dominant(fs []jsonField) (jsonField, bool) {
	minDepth := fs[0].depth
	for _, f := range fs {
		minDepth = min(minDepth, f.depth)
	}
	var top []jsonField
	for _, f := range fs {
		if f.depth == minDepth {
			top = append(top, f)
		}
	}
	if len(top) == 1 {
		return top[0], true
	}
	var tagged []jsonField
	for _, f := range top {
		if f.tagged {
			tagged = append(tagged, f)
		}
	}
	if len(tagged) == 1 {
		return tagged[0], true
	}
	return jsonField{}, false
}

// marshalSchema returns the JSON of s.
func marshalSchema(s *jsonSchema) json.RawMessage {
	b, err := json.Marshal(s)
	if err != nil { // a jsonSchema holds strings, slices and maps only
		return json.RawMessage(`{}`)
	}
	return b
}
