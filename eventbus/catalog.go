package eventbus

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dddkit/dddkit/internal/wire"
)

// Catalog describes the events of a [Registry] for the teams that consume
// them in other languages: for each event its stable name, schema
// version, topic, key and content type, and a JSON Schema (draft 2020-12)
// of its payload, from which Java, Python or TypeScript types can be
// generated (jsonschema2pojo, datamodel-code-generator, quicktype). Its
// JSON is stable: events sorted by name, object keys sorted, so a
// committed catalogue shows in a diff exactly what changed.
//
// Get it from [Registry.Catalog]; [Catalog.Markdown] renders it for
// people.
type Catalog struct {
	// Events lists the registered events, sorted by name.
	Events []CatalogEvent `json:"events"`
}

// CatalogEvent describes one registered event; see [Catalog].
type CatalogEvent struct {
	// Name is the event's stable name (its EventName).
	Name string `json:"name"`
	// SchemaVersion is the version of the payload the registered type
	// writes (its EventVersion, else 1). Older versions are upcast by
	// the consumers that registered upcasters.
	SchemaVersion int `json:"schema_version"`
	// AggregateType is the type of aggregate that records the event;
	// empty when it was registered without one.
	AggregateType string `json:"aggregate_type,omitempty"`
	// Topic is the topic the event is published on, by the registry's
	// topic rule; empty without an aggregate type.
	Topic string `json:"topic,omitempty"`
	// Key says what the Kafka record key is: the aggregate ID, so that
	// one aggregate's events share a partition and keep their order.
	Key string `json:"key"`
	// ContentType is the media type of the payload.
	ContentType string `json:"content_type"`
	// Schema is the JSON Schema (draft 2020-12) of the payload as the
	// codec writes it (encoding/json): json tags name the properties and
	// omit fields ("-"); a field is required unless tagged omitempty or
	// omitzero or reached through an embedded pointer; time.Time is a
	// date-time string; []byte a base64 string; pointers, slices and maps
	// may be null; embedded structs are flattened; named struct types
	// other than the event are in $defs. Additional properties are
	// allowed: adding a field is a compatible change.
	Schema json.RawMessage `json:"schema"`
}

// catalogKey is [CatalogEvent.Key]: the record key of every event.
const catalogKey = "aggregate ID"

// Catalog returns the catalogue of every event registered in r.
func (r *Registry) Catalog() Catalog {
	r.mu.RLock()
	types := make([]*eventType, 0, len(r.byName))
	for _, et := range r.byName {
		types = append(types, et)
	}
	r.mu.RUnlock()
	slices.SortFunc(types, func(a, b *eventType) int { return strings.Compare(a.name, b.name) })

	c := Catalog{Events: make([]CatalogEvent, 0, len(types))}
	for _, et := range types {
		ev := CatalogEvent{
			Name:          et.name,
			SchemaVersion: et.version,
			AggregateType: et.aggregateType,
			Key:           catalogKey,
			ContentType:   wire.ContentTypeJSON,
			Schema:        marshalSchema(payloadSchema(et.goType, et.name)),
		}
		if et.aggregateType != "" {
			ev.Topic = r.topic(et.aggregateType)
		}
		c.Events = append(c.Events, ev)
	}
	return c
}

// Markdown renders the catalogue for people: per event a table of its
// attributes and of its payload's properties (with the types in $defs
// after them). The JSON form stays the reference for code generators.
func (c Catalog) Markdown() string {
	var b strings.Builder
	b.WriteString("# Events\n\n")
	b.WriteString("Generated from the event registry (eventbus.Registry.Catalog); do not edit.\n")
	b.WriteString("The JSON form, with the JSON Schema of every payload, is the reference for code generators.\n")
	for _, ev := range c.Events {
		fmt.Fprintf(&b, "\n## %s\n\n", ev.Name)
		b.WriteString("| attribute | value |\n|---|---|\n")
		fmt.Fprintf(&b, "| schema version | %d |\n", ev.SchemaVersion)
		if ev.AggregateType != "" {
			fmt.Fprintf(&b, "| aggregate type | `%s` |\n", ev.AggregateType)
		}
		if ev.Topic != "" {
			fmt.Fprintf(&b, "| topic | `%s` |\n", ev.Topic)
		}
		fmt.Fprintf(&b, "| key | %s |\n", ev.Key)
		fmt.Fprintf(&b, "| content type | `%s` |\n", ev.ContentType)

		var s jsonSchema
		if err := json.Unmarshal(ev.Schema, &s); err != nil {
			continue
		}
		writeProperties(&b, "Payload", &s)
		defs := make([]string, 0, len(s.Defs))
		for name := range s.Defs {
			defs = append(defs, name)
		}
		slices.Sort(defs)
		for _, name := range defs {
			writeProperties(&b, "`"+name+"`", s.Defs[name])
		}
	}
	return b.String()
}

// writeProperties writes the property table of object schema s.
func writeProperties(b *strings.Builder, title string, s *jsonSchema) {
	fmt.Fprintf(b, "\n%s:\n\n", title)
	if len(s.Properties) == 0 {
		fmt.Fprintf(b, "%s\n", schemaLabel(s))
		return
	}
	b.WriteString("| property | type | required |\n|---|---|---|\n")
	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		req := "no"
		if slices.Contains(s.Required, name) {
			req = "yes"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", name, schemaLabel(s.Properties[name]), req)
	}
}

// schemaLabel is a short description of s: "string (date-time)",
// "array of `Item`", "integer or null".
func schemaLabel(s *jsonSchema) string {
	if s.Ref != "" {
		if s.Ref == "#" {
			return "the event itself"
		}
		return "`" + strings.TrimPrefix(s.Ref, "#/$defs/") + "`"
	}
	if len(s.AnyOf) > 0 {
		parts := make([]string, len(s.AnyOf))
		for i, a := range s.AnyOf {
			parts[i] = schemaLabel(a)
		}
		return strings.Join(parts, " or ")
	}
	var types []string
	switch typ := s.Type.(type) {
	case string:
		types = []string{typ}
	case []any:
		for _, t := range typ {
			types = append(types, fmt.Sprint(t))
		}
	case []string:
		types = typ
	}
	if len(types) == 0 {
		return "any"
	}
	label := types[0]
	switch {
	case s.Format != "":
		label += " (" + s.Format + ")"
	case s.ContentEncoding != "":
		label += " (" + s.ContentEncoding + ")"
	case s.Items != nil:
		label = "array of " + schemaLabel(s.Items)
	case s.AdditionalProperties != nil:
		label = "object of " + schemaLabel(s.AdditionalProperties)
	case label == "object":
		label = "object"
	}
	for _, t := range types[1:] {
		label += " or " + t
	}
	return label
}
