package eventbus

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/dddkit/dddkit/aggregate"
)

// This file holds the check that [Register] runs on an event type: would
// a value of it arrive as it was sent? encoding/json drops what it cannot
// see without a word — an unexported field, a value object whose fields
// are all unexported (Money{amount, currency} travels as {}: 25.00 EUR
// sent, {0 ""} received), a field hidden by another of the same JSON name
// — so the check looks in two ways:
//
//   - a walk over the type (struct fields, pointers, slices, arrays, maps)
//     that names every field encoding/json would drop or cannot handle;
//   - a round trip of a value filled with non-zero data through the
//     registry's own encoding and decoding, compared with reflect.DeepEqual,
//     which catches what the walk does not model (two fields under one JSON
//     name, ambiguous embedded fields).
//
// Types with their own encoding (json.Marshaler and json.Unmarshaler, or
// encoding.TextMarshaler and encoding.TextUnmarshaler, such as time.Time
// or valueobject.Email) are trusted: neither walked nor filled, so that a
// validating UnmarshalText is never fed made-up data.

var (
	jsonMarshalerType   = reflect.TypeFor[json.Marshaler]()
	jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// customJSON reports whether encoding/json encodes (enc) and decodes (dec)
// a value of type t with the type's own methods. addressable says whether
// the value is addressable where it is encoded (a field reached through a
// pointer or a slice is, a field of an event sent by value is not): only
// then does encoding/json call a MarshalJSON with a pointer receiver.
func customJSON(t reflect.Type, addressable bool) (enc, dec bool) {
	implements := func(t reflect.Type, json, text reflect.Type) bool {
		return t.Implements(json) || t.Implements(text)
	}
	if t.Kind() == reflect.Interface {
		return false, false
	}
	if t.Kind() == reflect.Pointer {
		return implements(t, jsonMarshalerType, textMarshalerType), implements(t, jsonUnmarshalerType, textUnmarshalerType)
	}
	pt := reflect.PointerTo(t)
	enc = implements(t, jsonMarshalerType, textMarshalerType) || addressable && implements(pt, jsonMarshalerType, textMarshalerType)
	dec = implements(pt, jsonUnmarshalerType, textUnmarshalerType)
	return enc, dec
}

// checkLossless returns an error wrapping [ErrLossyEvent] that names every
// field of event type t that would not arrive as sent, or nil. decode is
// the registered decoder of t.
func checkLossless(t reflect.Type, decode func(payload []byte) (aggregate.Event, error)) error {
	w := walker{onPath: make(map[walkKey]bool)}
	w.walk(t, "", false)
	if len(w.problems) > 0 {
		return fmt.Errorf("%w: %s", ErrLossyEvent, strings.Join(w.problems, "; "))
	}
	if err := roundTrip(t, decode); err != nil {
		return fmt.Errorf("%w: %w", ErrLossyEvent, err)
	}
	return nil
}

type walkKey struct {
	t           reflect.Type
	addressable bool
}

// walker collects the problems of a type, one line per field.
type walker struct {
	onPath   map[walkKey]bool // the types being walked, outermost first
	problems []string
}

func (w *walker) add(path, format string, args ...any) {
	where := "the event type"
	if path != "" {
		where = "field " + path
	}
	w.problems = append(w.problems, where+": "+fmt.Sprintf(format, args...))
}

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

const ownEncoding = "give it MarshalJSON and UnmarshalJSON (or MarshalText and UnmarshalText)"

func (w *walker) walk(t reflect.Type, path string, addressable bool) {
	key := walkKey{t, addressable}
	if w.onPath[key] {
		return // a recursive type: its fields are being walked already
	}
	w.onPath[key] = true
	defer delete(w.onPath, key)

	if t.Kind() == reflect.Pointer {
		if enc, dec := customJSON(t, false); enc || dec {
			if enc && !dec {
				w.add(path, "%s has its own JSON or text encoding but no decoding: it can be sent but not read back", t)
			}
			return
		}
		w.walk(t.Elem(), path, true)
		return
	}
	enc, dec := customJSON(t, addressable)
	switch {
	case enc && dec:
		return // the type's own encoding: trusted
	case enc:
		w.add(path, "%s has its own JSON or text encoding but no decoding: it can be sent but not read back", t)
		return
	case !addressable && reflect.PointerTo(t).Implements(jsonMarshalerType) || !addressable && reflect.PointerTo(t).Implements(textMarshalerType):
		w.add(path, "%s has MarshalJSON (or MarshalText) with a pointer receiver, which encoding/json does not call for a value sent by value: give the method a value receiver", t)
		return
	}

	switch t.Kind() {
	case reflect.Struct:
		w.walkStruct(t, path, addressable)
	case reflect.Slice:
		w.walk(t.Elem(), path+"[]", true)
	case reflect.Array:
		w.walk(t.Elem(), path+"[]", addressable)
	case reflect.Map:
		k := t.Key()
		switch k.Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			if !k.Implements(textMarshalerType) || !reflect.PointerTo(k).Implements(textUnmarshalerType) {
				w.add(path, "map key type %s: encoding/json takes strings, integers and types with MarshalText and UnmarshalText as keys", k)
			}
		}
		w.walk(t.Elem(), path+"[key]", false)
	case reflect.Interface:
		if t.NumMethod() > 0 {
			w.add(path, "interface type %s: encoding/json cannot decode into it; use a concrete type", t)
		}
	case reflect.Func, reflect.Chan, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		w.add(path, "%s values cannot be encoded as JSON", t.Kind())
	}
}

func (w *walker) walkStruct(t reflect.Type, path string, addressable bool) {
	var unexported []string
	exported := 0
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Tag.Get("json") == "-" {
			continue // left out on purpose
		}
		fp := join(path, f.Name)
		if f.IsExported() {
			exported++
			w.walk(f.Type, fp, addressable)
			continue
		}
		if f.Anonymous {
			// encoding/json promotes the exported fields of an embedded
			// struct of an unexported type, but cannot allocate one
			// behind a pointer when it decodes.
			switch {
			case f.Type.Kind() == reflect.Struct:
				exported++
				w.walk(f.Type, fp, addressable)
				continue
			case f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct:
				w.add(fp, "embedded pointer to the unexported struct type %s: encoding/json cannot set it when decoding", f.Type.Elem())
				continue
			}
		}
		unexported = append(unexported, f.Name)
	}
	if len(unexported) == 0 {
		return
	}
	what := "travels without them"
	if exported == 0 {
		what = "travels as {} and arrives as its zero value"
	}
	if path == "" {
		w.add(path, "unexported fields %s are dropped by encoding/json: the event %s; export them or %s",
			strings.Join(unexported, ", "), what, ownEncoding)
		return
	}
	w.add(path, "%s has unexported fields (%s) that encoding/json drops: the value %s; export them or %s",
		t, strings.Join(unexported, ", "), what, ownEncoding)
}

// roundTrip encodes a value of t filled with non-zero data as the registry
// does, decodes it with decode and compares.
func roundTrip(t reflect.Type, decode func(payload []byte) (aggregate.Event, error)) error {
	v := reflect.New(t).Elem()
	f := filler{depth: make(map[reflect.Type]int)}
	f.fill(v, false)
	sent, ok := v.Interface().(aggregate.Event)
	if !ok {
		return fmt.Errorf("%s is not an aggregate.Event", t)
	}
	payload, err := json.Marshal(sent)
	if err != nil {
		return fmt.Errorf("a sample value cannot be encoded: %w", err)
	}
	payload, err = stripOwnEncoded(t, payload)
	if err != nil {
		return fmt.Errorf("a sample value cannot be encoded: %w", err)
	}
	got, err := decode(payload)
	if err != nil {
		return fmt.Errorf("a sample value cannot be decoded from its own JSON %s: %w", payload, err)
	}
	if reflect.DeepEqual(sent, got) {
		return nil
	}
	path, a, b := difference(reflect.ValueOf(sent), reflect.ValueOf(got), "")
	if path == "" {
		return fmt.Errorf("a sample value does not survive a round trip through encoding/json: sent %+v, received %+v", sent, got)
	}
	return fmt.Errorf("field %s does not survive a round trip through encoding/json: sent %s, received %s (is another field encoded under the same JSON name?)", path, a, b)
}

// filler fills a value with non-zero data: every exported field, one
// element per slice and map, pointers allocated. Types with their own
// encoding stay zero, and a recursive type is filled two levels deep.
type filler struct {
	depth map[reflect.Type]int
}

func (f *filler) fill(v reflect.Value, addressable bool) {
	t := v.Type()
	if t.Kind() == reflect.Interface {
		return
	}
	if enc, dec := customJSON(t, addressable); enc || dec {
		return
	}
	if f.depth[t] >= 2 {
		return
	}
	f.depth[t]++
	defer func() { f.depth[t]-- }()
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.String:
		v.SetString("x")
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		f.fill(p.Elem(), true)
		v.Set(p)
	case reflect.Struct:
		for i := range t.NumField() {
			sf := t.Field(i)
			if sf.Tag.Get("json") == "-" {
				continue
			}
			if fv := v.Field(i); sf.IsExported() && fv.CanSet() || sf.Anonymous && sf.Type.Kind() == reflect.Struct {
				f.fill(fv, addressable)
			}
		}
	case reflect.Slice:
		if ownEncoded(t.Elem(), true) {
			return
		}
		s := reflect.MakeSlice(t, 1, 1)
		f.fill(s.Index(0), true)
		v.Set(s)
	case reflect.Array:
		if ownEncoded(t.Elem(), addressable) {
			return
		}
		for i := range v.Len() {
			f.fill(v.Index(i), addressable)
		}
	case reflect.Map:
		k := reflect.New(t.Key()).Elem()
		if enc, dec := customJSON(t.Key(), false); enc || dec || ownEncoded(t.Elem(), false) {
			return
		}
		switch t.Key().Kind() {
		case reflect.String:
			k.SetString("k")
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			k.SetInt(7)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			k.SetUint(7)
		default:
			return
		}
		e := reflect.New(t.Elem()).Elem()
		f.fill(e, false)
		m := reflect.MakeMapWithSize(t, 1)
		m.SetMapIndex(k, e)
		v.Set(m)
	}
}

// ownEncoded reports whether a value of t (not a pointer) is encoded with
// the type's own methods, or is an array of such values: the filler
// leaves it zero and [stripOwnEncoded] takes it out of the sample's JSON.
func ownEncoded(t reflect.Type, addressable bool) bool {
	if t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface {
		return false
	}
	if enc, dec := customJSON(t, addressable); enc || dec {
		return true
	}
	return t.Kind() == reflect.Array && ownEncoded(t.Elem(), addressable)
}

// stripOwnEncoded removes from the JSON of a sample value of t the
// members that hold a value with its own encoding: the zero value the
// filler left there need not decode (valueobject.Email refuses ""), and
// leaving the member out makes the decoder leave the field zero as well.
func stripOwnEncoded(t reflect.Type, payload []byte) ([]byte, error) {
	var tree any
	if err := json.Unmarshal(payload, &tree); err != nil {
		return nil, err
	}
	if !strip(t, tree, false) {
		return payload, nil
	}
	return json.Marshal(tree)
}

// strip removes the own-encoded members of node, the JSON of a value of t,
// and reports whether it removed any.
func strip(t reflect.Type, node any, addressable bool) bool {
	for t.Kind() == reflect.Pointer {
		if enc, dec := customJSON(t, false); enc || dec {
			return false
		}
		t, addressable = t.Elem(), true
	}
	if enc, dec := customJSON(t, addressable); enc || dec {
		return false
	}
	changed := false
	switch t.Kind() {
	case reflect.Struct:
		if obj, ok := node.(map[string]any); ok {
			changed = stripStruct(t, obj, addressable)
		}
	case reflect.Slice, reflect.Array:
		if arr, ok := node.([]any); ok {
			for _, el := range arr {
				changed = strip(t.Elem(), el, t.Kind() == reflect.Slice || addressable) || changed
			}
		}
	case reflect.Map:
		if obj, ok := node.(map[string]any); ok {
			for _, el := range obj {
				changed = strip(t.Elem(), el, false) || changed
			}
		}
	}
	return changed
}

func stripStruct(t reflect.Type, obj map[string]any, addressable bool) bool {
	changed := false
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if enc, dec := customJSON(f.Type, addressable); et.Kind() == reflect.Struct && !enc && !dec {
				changed = stripStruct(et, obj, addressable || f.Type.Kind() == reflect.Pointer) || changed
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		child, ok := obj[name]
		if !ok {
			continue
		}
		if ownEncoded(f.Type, addressable) {
			delete(obj, name)
			changed = true
			continue
		}
		changed = strip(f.Type, child, addressable) || changed
	}
	return changed
}

// difference returns the path of the first exported field in which a and
// b differ, and the two values there.
func difference(a, b reflect.Value, path string) (at, va, vb string) {
	show := func(v reflect.Value) string {
		if !v.IsValid() {
			return "nothing"
		}
		if v.CanInterface() {
			return fmt.Sprintf("%#v", v.Interface())
		}
		return v.String()
	}
	if !a.IsValid() || !b.IsValid() || a.Type() != b.Type() {
		return cmpPath(path), show(a), show(b)
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return cmpPath(path), show(a), show(b)
			}
			return "", "", ""
		}
		return difference(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := range a.NumField() {
			f := a.Type().Field(i)
			if !f.IsExported() && !f.Anonymous {
				continue
			}
			if p, x, y := difference(a.Field(i), b.Field(i), join(path, f.Name)); p != "" {
				return p, x, y
			}
		}
		return "", "", ""
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return cmpPath(path), show(a), show(b)
		}
		for i := range a.Len() {
			if p, x, y := difference(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p, x, y
			}
		}
		return "", "", ""
	case reflect.Map:
		keys := a.MapKeys()
		slices.SortFunc(keys, func(x, y reflect.Value) int { return strings.Compare(fmt.Sprint(x), fmt.Sprint(y)) })
		for _, k := range keys {
			if p, x, y := difference(a.MapIndex(k), b.MapIndex(k), fmt.Sprintf("%s[%v]", path, k)); p != "" {
				return p, x, y
			}
		}
		if a.Len() != b.Len() {
			return cmpPath(path), show(a), show(b)
		}
		return "", "", ""
	}
	if !a.CanInterface() || !b.CanInterface() {
		return "", "", ""
	}
	if !reflect.DeepEqual(a.Interface(), b.Interface()) {
		return cmpPath(path), show(a), show(b)
	}
	return "", "", ""
}

// cmpPath names the whole event when the path is empty.
func cmpPath(path string) string {
	if path == "" {
		return "(the event itself)"
	}
	return path
}
