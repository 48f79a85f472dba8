package eventbus_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
)

// money is a typical value object: its fields are unexported, so
// encoding/json sees none of them.
type money struct {
	amount   int64  //nolint:unused // what encoding/json cannot see is the point
	currency string //nolint:unused // what encoding/json cannot see is the point
}

type orderPlaced struct {
	OrderID string
	Price   money
}

func (orderPlaced) EventName() string { return "shop.order_placed" }

// cents has MarshalJSON and UnmarshalJSON with pointer receivers only.
type cents struct{ n int64 }

func (c *cents) MarshalJSON() ([]byte, error) { return json.Marshal(c.n) }
func (c *cents) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &c.n) }

// sendOnly can be encoded but not decoded.
type sendOnly struct{ v string }

func (s sendOnly) MarshalText() ([]byte, error) { return []byte(s.v), nil }

type lossy struct {
	ID       string
	note     string //nolint:unused // dropped by encoding/json: the point
	Lines    []struct{ Price money }
	ByKey    map[string]*money
	Total    cents
	Label    sendOnly
	Callback func()
	Nested   aggregate.Event
}

func (lossy) EventName() string { return "test.lossy" }

// A type whose only loss is two embedded fields under one JSON name:
// encoding/json drops both without a word, and only the round trip sees
// it.
type (
	PartA struct{ ID string }
	PartB struct{ ID string }
	clash struct {
		PartA
		PartB
		C int
	}
)

func (clash) EventName() string { return "test.clash" }

func TestRegisterRefusesLossyTypes(t *testing.T) {
	t.Parallel()
	err := eventbus.Register[orderPlaced](newRegistry(t))
	require.ErrorIs(t, err, eventbus.ErrLossyEvent)
	require.ErrorContains(t, err, "shop.order_placed")
	require.ErrorContains(t, err, "field Price: eventbus_test.money has unexported fields (amount, currency) that encoding/json drops: the value travels as {}")
	require.ErrorContains(t, err, "MarshalJSON and UnmarshalJSON")

	err = eventbus.Register[lossy](newRegistry(t))
	require.ErrorIs(t, err, eventbus.ErrLossyEvent)
	for _, want := range []string{
		"the event type: unexported fields note are dropped",
		"field Lines[].Price: eventbus_test.money has unexported fields",
		"field ByKey[key]: eventbus_test.money has unexported fields",
		"field Total: eventbus_test.cents has MarshalJSON (or MarshalText) with a pointer receiver",
		"field Label: eventbus_test.sendOnly has its own JSON or text encoding but no decoding",
		"field Callback: func values cannot be encoded as JSON",
		"field Nested: interface type aggregate.Event: encoding/json cannot decode into it",
	} {
		require.ErrorContains(t, err, want)
	}

	err = eventbus.Register[clash](newRegistry(t))
	require.ErrorIs(t, err, eventbus.ErrLossyEvent)
	require.ErrorContains(t, err, `field PartA.ID does not survive a round trip through encoding/json: sent "x", received ""`)
}

// amount is money done right: its own encoding, a value receiver for
// MarshalJSON (encoding/json calls it wherever the value is).
type amount struct {
	cents    int64
	currency string
}

func (a amount) MarshalJSON() ([]byte, error) {
	return json.Marshal(fmt.Sprintf("%d %s", a.cents, a.currency))
}

func (a *amount) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	n, cur, _ := strings.Cut(s, " ")
	c, err := strconv.ParseInt(n, 10, 64)
	if err != nil {
		return err
	}
	a.cents, a.currency = c, cur
	return nil
}

// code validates in UnmarshalText and refuses the empty text, as
// valueobject.Email does: the check must not feed it made-up data.
type code string

func (c code) MarshalText() ([]byte, error) { return []byte(c), nil }
func (c *code) UnmarshalText(b []byte) error {
	if len(b) != 6 {
		return errors.New("a code has 6 digits")
	}
	*c = code(b)
	return nil
}

type Audit struct {
	By string
	At time.Time
}

type meta struct{ Source string }

type fine struct {
	Audit
	meta
	ID       string
	Price    amount
	Prices   []amount
	Optional *amount
	Totals   map[string]amount
	Code     code
	Codes    [2]code
	MaybeRef *code
	Tags     []string
	Counts   map[int]uint8
	Raw      json.RawMessage
	Attrs    map[string]any
	Nested   struct {
		X     float64 `json:"x,omitempty"`
		Cents cents   // reached through a pointer below, so addressable
	} `json:"nested"`
	Items   []cents
	Skipped string `json:"-"`
	Next    *fine
}

func (*fine) EventName() string { return "test.fine" }

func TestRegisterAcceptsTypesThatSurviveEncoding(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	require.NoError(t, eventbus.Register[*fine](reg))
	require.NoError(t, eventbus.Register[userRegistered](reg))

	sent := &fine{
		Audit: Audit{By: "ada", At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}, meta: meta{Source: "api"},
		ID: "o-1", Price: amount{2500, "EUR"}, Prices: []amount{{1, "USD"}}, Totals: map[string]amount{"net": {2000, "EUR"}},
		Code: "123456", Codes: [2]code{"111111", "222222"}, Tags: []string{"a"}, Raw: json.RawMessage(`{"k":1}`),
		Items: []cents{{7}}, Next: &fine{ID: "o-2", Code: "654321", Codes: [2]code{"333333", "444444"}, Raw: json.RawMessage(`1`)},
	}
	sent.Nested.X = 1.5
	payload, version, err := reg.EncodePayload(sent)
	require.NoError(t, err)
	require.Equal(t, 1, version)
	require.True(t, strings.Contains(string(payload), `"2500 EUR"`), "payload %s", payload)
	got, err := reg.DecodePayload("test.fine", version, payload)
	require.NoError(t, err)
	require.Equal(t, sent, got, "25.00 EUR sent, 25.00 EUR received")
}
