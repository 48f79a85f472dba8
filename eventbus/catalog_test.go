package eventbus_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/eventbus"
)

// Catalogue test events: every rule of encoding/json the schema follows.
type (
	catalogAddress struct {
		Street string `json:"street"`
		City   string `json:"city,omitempty"`
	}
	catalogAudit struct {
		By string `json:"by"`
	}
	CatalogTrace struct {
		TraceID string `json:"trace_id"`
	}
	catalogOrderPlaced struct {
		catalogAudit                  // flattened, required
		*CatalogTrace                 // flattened; absent when nil
		OrderID       string          `json:"order_id"`
		Note          string          `json:"note,omitempty"`
		Internal      string          `json:"-"`
		PlacedAt      time.Time       `json:"placed_at"`
		ShipAt        *time.Time      `json:"ship_at"`
		Total         int64           `json:"total,string"`
		Ship          catalogAddress  `json:"ship"`
		Bill          *catalogAddress `json:"bill,omitempty"`
		Lines         []catalogLine   `json:"lines"`
		Tags          map[string]int  `json:"tags"`
		Blob          []byte          `json:"blob"`
		Extra         any             `json:"extra,omitempty"`
		Untagged      bool
		Nested        struct{ X int } `json:"nested"`
	}
	catalogLine struct {
		SKU string       `json:"sku"`
		Qty int          `json:"qty"`
		Sub *catalogLine `json:"sub,omitempty"`
	}
	catalogCancelled struct {
		OrderID string `json:"order_id"`
	}
)

func (catalogOrderPlaced) EventName() string { return "shop.order_placed" }
func (catalogOrderPlaced) EventVersion() int { return 3 }
func (catalogCancelled) EventName() string   { return "shop.order_cancelled" }

func catalogRegistry(t *testing.T) *eventbus.Registry {
	t.Helper()
	reg := eventbus.NewRegistry(nil)
	up := func(p json.RawMessage) (json.RawMessage, error) { return p, nil }
	require.NoError(t, eventbus.Register[catalogOrderPlaced](reg, eventbus.AggregateType("order"),
		eventbus.Upcaster(1, up), eventbus.Upcaster(2, up)))
	require.NoError(t, eventbus.Register[catalogCancelled](reg))
	return reg
}

func TestCatalogSchema(t *testing.T) {
	t.Parallel()
	c := catalogRegistry(t).Catalog()
	require.Len(t, c.Events, 2)
	require.Equal(t, "shop.order_cancelled", c.Events[0].Name, "sorted by name")
	require.Empty(t, c.Events[0].Topic, "no aggregate type, no topic")
	ev := c.Events[1]
	require.Equal(t, "shop.order_placed", ev.Name)
	require.Equal(t, 3, ev.SchemaVersion)
	require.Equal(t, "order", ev.AggregateType)
	require.Equal(t, "order.events", ev.Topic)
	require.Equal(t, "aggregate ID", ev.Key)
	require.Equal(t, "application/json", ev.ContentType)

	var s map[string]any
	require.NoError(t, json.Unmarshal(ev.Schema, &s))
	require.Equal(t, "https://json-schema.org/draft/2020-12/schema", s["$schema"])
	require.Equal(t, "object", s["type"])
	props := s["properties"].(map[string]any)
	prop := func(name string) string {
		b, err := json.Marshal(props[name])
		require.NoError(t, err)
		return string(b)
	}
	require.ElementsMatch(t, []string{
		"by", "trace_id", "order_id", "note", "placed_at", "ship_at", "total", "ship", "bill",
		"lines", "tags", "blob", "extra", "Untagged", "nested",
	}, keys(props), "json names; '-' skipped; embedded structs flattened")
	require.ElementsMatch(t, []any{
		"by", "order_id", "placed_at", "ship_at", "total", "ship", "lines", "tags", "blob", "Untagged", "nested",
	}, s["required"], "omitempty and fields behind an embedded pointer are not required")

	require.JSONEq(t, `{"type":"string","format":"date-time"}`, prop("placed_at"))
	require.JSONEq(t, `{"type":["string","null"],"format":"date-time"}`, prop("ship_at"))
	require.JSONEq(t, `{"type":"string","description":"a JSON integer inside a string"}`, prop("total"))
	require.JSONEq(t, `{"$ref":"#/$defs/catalogAddress"}`, prop("ship"))
	require.JSONEq(t, `{"anyOf":[{"$ref":"#/$defs/catalogAddress"},{"type":"null"}]}`, prop("bill"))
	require.JSONEq(t, `{"type":["array","null"],"items":{"$ref":"#/$defs/catalogLine"}}`, prop("lines"))
	require.JSONEq(t, `{"type":["object","null"],"additionalProperties":{"type":"integer"}}`, prop("tags"))
	require.JSONEq(t, `{"type":["string","null"],"contentEncoding":"base64"}`, prop("blob"))
	require.JSONEq(t, `{}`, prop("extra"))
	require.JSONEq(t, `{"type":"boolean"}`, prop("Untagged"))
	require.JSONEq(t, `{"type":"object","properties":{"X":{"type":"integer"}},"required":["X"]}`, prop("nested"))

	defs := s["$defs"].(map[string]any)
	line, err := json.Marshal(defs["catalogLine"])
	require.NoError(t, err)
	require.JSONEq(t, `{"type":"object","required":["qty","sku"],"properties":{
		"sku":{"type":"string"},"qty":{"type":"integer"},
		"sub":{"anyOf":[{"$ref":"#/$defs/catalogLine"},{"type":"null"}]}}}`, string(line), "a recursive type refers to itself")

	// Stable: the same registry gives the same bytes.
	a, err := json.Marshal(c)
	require.NoError(t, err)
	b, err := json.Marshal(catalogRegistry(t).Catalog())
	require.NoError(t, err)
	require.Equal(t, string(a), string(b))
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCatalogSchemaValidatesPayloads checks the schema with an independent
// validator: it compiles against the draft 2020-12 meta-schema, accepts
// what the codec writes and refuses a payload without a required field.
func TestCatalogSchemaValidatesPayloads(t *testing.T) {
	t.Parallel()
	reg := catalogRegistry(t)
	ev := reg.Catalog().Events[1]
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(ev.Schema))
	require.NoError(t, err)
	comp := jsonschema.NewCompiler()
	comp.AssertFormat()
	comp.AssertContent()
	require.NoError(t, comp.AddResource("order_placed.json", doc))
	schema, err := comp.Compile("order_placed.json")
	require.NoError(t, err)

	validate := func(payload []byte) error {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
		require.NoError(t, err)
		return schema.Validate(inst)
	}
	ship := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	full := catalogOrderPlaced{
		catalogAudit: catalogAudit{By: "ada"}, CatalogTrace: &CatalogTrace{TraceID: "t-1"},
		OrderID: "o-1", Note: "gift", PlacedAt: time.Date(2026, 5, 6, 7, 0, 0, 123, time.UTC), ShipAt: &ship,
		Total: 4200, Ship: catalogAddress{Street: "1 Main St", City: "Springfield"}, Bill: &catalogAddress{Street: "2 Side St"},
		Lines: []catalogLine{{SKU: "a", Qty: 1, Sub: &catalogLine{SKU: "b", Qty: 2}}},
		Tags:  map[string]int{"x": 1}, Blob: []byte{0, 1, 255}, Extra: []any{"anything", 1.5}, Untagged: true,
	}
	for name, e := range map[string]catalogOrderPlaced{"full": full, "zero": {}} {
		payload, _, err := reg.EncodePayload(e)
		require.NoError(t, err)
		require.NoError(t, validate(payload), "%s payload %s", name, payload)
	}

	payload, _, err := reg.EncodePayload(full)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload, &m))
	delete(m, "order_id")
	missing, err := json.Marshal(m)
	require.NoError(t, err)
	err = validate(missing)
	require.Error(t, err, "a payload without order_id")
	require.Contains(t, err.Error(), "order_id")

	wrong := strings.Replace(string(payload), `"placed_at":"2026-05-06T07:00:00.000000123Z"`, `"placed_at":"yesterday"`, 1)
	require.NotEqual(t, string(payload), wrong)
	require.Error(t, validate([]byte(wrong)), "placed_at is not a date-time")
}

func TestCatalogMarkdown(t *testing.T) {
	t.Parallel()
	md := catalogRegistry(t).Catalog().Markdown()
	for _, want := range []string{
		"## shop.order_placed",
		"| schema version | 3 |",
		"| topic | `order.events` |",
		"| key | aggregate ID |",
		"| `placed_at` | string (date-time) | yes |",
		"| `bill` | `catalogAddress` or null | no |",
		"| `lines` | array of `catalogLine` or null | yes |",
		"| `trace_id` | string | no |",
		"`catalogLine`:",
	} {
		require.Contains(t, md, want)
	}
	require.Less(t, strings.Index(md, "## shop.order_cancelled"), strings.Index(md, "## shop.order_placed"))
}
