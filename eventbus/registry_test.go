package eventbus_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/aggregate"
	"github.com/dddkit/dddkit/eventbus"
	"github.com/dddkit/dddkit/retry"
)

type userRegistered struct {
	Email string
	Name  string
}

func (userRegistered) EventName() string { return "auth.user_registered" }

type userRegisteredAgain struct{ Email string }

func (userRegisteredAgain) EventName() string { return "auth.user_registered" }

type noName struct{}

func (noName) EventName() string { return "" }

type ptrEvent struct{ N int }

func (*ptrEvent) EventName() string { return "test.ptr" }

// profileChanged is at schema version 3: v1 had "name", v2 renamed it to
// "full_name", v3 split it into First and Last.
type profileChanged struct {
	First, Last string
}

func (profileChanged) EventName() string { return "auth.profile_changed" }
func (profileChanged) EventVersion() int { return 3 }

func upcastV1(p json.RawMessage) (json.RawMessage, error) {
	var v1 struct{ Name string }
	if err := json.Unmarshal(p, &v1); err != nil {
		return nil, err
	}
	return json.Marshal(map[string]string{"full_name": v1.Name})
}

func upcastV2(p json.RawMessage) (json.RawMessage, error) {
	var v2 struct {
		FullName string `json:"full_name"`
	}
	if err := json.Unmarshal(p, &v2); err != nil {
		return nil, err
	}
	first, last, _ := cut(v2.FullName)
	return json.Marshal(profileChanged{First: first, Last: last})
}

func cut(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == ' ' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func newRegistry(t *testing.T) *eventbus.Registry {
	t.Helper()
	return eventbus.NewRegistry(nil)
}

func TestRegisterRefusesConflicts(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	require.NoError(t, eventbus.Register[userRegistered](reg, eventbus.AggregateType("user")))
	require.ErrorIs(t, eventbus.Register[userRegistered](reg), eventbus.ErrDuplicateEvent)
	err := eventbus.Register[userRegisteredAgain](reg)
	require.ErrorIs(t, err, eventbus.ErrDuplicateEvent)
	require.ErrorContains(t, err, "userRegistered")
	require.ErrorContains(t, eventbus.Register[noName](reg), "EventName() is empty")
	require.ErrorContains(t, eventbus.Register[aggregate.Event](reg), "not an interface")
	require.ErrorContains(t, eventbus.Register[userRegisteredAgain](newRegistry(t), eventbus.AggregateType("")), "AggregateType is empty")

	// Upcasters only from older versions, once each, non-nil.
	err = eventbus.Register[profileChanged](newRegistry(t),
		eventbus.Upcaster(0, upcastV1), eventbus.Upcaster(3, upcastV1),
		eventbus.Upcaster(1, nil), eventbus.Upcaster(2, upcastV2), eventbus.Upcaster(2, upcastV2))
	require.Error(t, err)
	for _, want := range []string{"Upcaster(0)", "Upcaster(3)", "Upcaster(1): nil", "Upcaster(2): registered twice"} {
		require.ErrorContains(t, err, want)
	}
	require.ErrorContains(t, eventbus.Register[userRegisteredAgain](newRegistry(t), eventbus.Upcaster(1, upcastV1)), "version 1")

	// Pointer event types work (EventName with a pointer receiver).
	require.NoError(t, eventbus.Register[*ptrEvent](reg, eventbus.AggregateType("p")))
	payload, version, err := reg.EncodePayload(&ptrEvent{N: 3})
	require.NoError(t, err)
	require.Equal(t, 1, version)
	e, err := reg.DecodePayload("test.ptr", version, payload)
	require.NoError(t, err)
	require.Equal(t, &ptrEvent{N: 3}, e)
}

func TestTopics(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	require.Equal(t, "user.events", reg.Topic("user"))
	require.Equal(t, "user.events", eventbus.DefaultTopic("user"))
	require.Equal(t, "billing.Invoice-2.events", eventbus.DefaultTopic("billing.Invoice-2"))
	require.Equal(t, "order_line_x.events", eventbus.DefaultTopic("order line/x"))
	require.Equal(t, "events", eventbus.DefaultTopic(""))

	custom := eventbus.NewRegistry(&eventbus.RegistryConfig{Topic: func(a string) string { return "auth." + a }})
	require.Equal(t, "auth.user", custom.Topic("user"))
}

func sampleEnvelope() aggregate.Envelope {
	return aggregate.Envelope{
		ID:            "0190a6a0-0000-7000-8000-000000000001",
		Name:          "auth.user_registered",
		AggregateType: "user",
		AggregateID:   "u-1",
		Version:       3,
		OccurredAt:    time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("CET", 3600)),
		Metadata: aggregate.Metadata{
			CorrelationID: "corr", CausationID: "cause", TraceParent: "00-abc-def-01",
			Values: map[string]string{"tenant": "t1"},
		},
		Payload: userRegistered{Email: "ada@example.com", Name: "Ada"},
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	require.NoError(t, eventbus.Register[userRegistered](reg, eventbus.AggregateType("user")))
	env := sampleEnvelope()
	msg, err := reg.Encode(env)
	require.NoError(t, err)
	require.Equal(t, env.ID, msg.UUID)
	require.Equal(t, "1", msg.Metadata.Get(eventbus.HeaderEventVersion))
	require.Equal(t, "u-1", msg.Metadata.Get(eventbus.HeaderAggregateID))
	require.Equal(t, "t1", msg.Metadata.Get(eventbus.HeaderValuePrefix+"tenant"))
	require.JSONEq(t, `{"Email":"ada@example.com","Name":"Ada"}`, string(msg.Payload))

	back, err := reg.Decode(msg)
	require.NoError(t, err)
	require.True(t, env.OccurredAt.Equal(back.OccurredAt))
	back.OccurredAt = env.OccurredAt
	require.Equal(t, env, back)
}

func TestEncodeRefusesIncompleteEnvelopes(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	_, err := reg.Encode(aggregate.Envelope{ID: "x"})
	require.ErrorContains(t, err, "no payload")
	_, err = reg.Encode(aggregate.Envelope{Name: "other", Payload: userRegistered{}})
	require.Error(t, err)
	for _, want := range []string{"differs", "no event ID", "no aggregate type", "no aggregate ID"} {
		require.ErrorContains(t, err, want)
	}
	// An unregistered type is refused; a registered one travels with its
	// schema version.
	env := sampleEnvelope()
	env.Name, env.Payload = "", profileChanged{First: "A"}
	_, err = reg.Encode(env)
	require.ErrorIs(t, err, eventbus.ErrNotRegistered)
	require.NoError(t, eventbus.Register[profileChanged](reg, eventbus.Upcaster(1, upcastV1), eventbus.Upcaster(2, upcastV2)))
	msg, err := reg.Encode(env)
	require.NoError(t, err)
	require.Equal(t, "3", msg.Metadata.Get(eventbus.HeaderEventVersion))
	require.Equal(t, "auth.profile_changed", msg.Metadata.Get(eventbus.HeaderEventName))
}

// badVersion says it is at version 0, which counts as 1.
type badVersion struct{}

func (badVersion) EventName() string { return "t.bad_version" }
func (badVersion) EventVersion() int { return 0 }

func TestEncodePayloadAndDecodePayload(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	require.NoError(t, eventbus.Register[profileChanged](reg, eventbus.Upcaster(1, upcastV1), eventbus.Upcaster(2, upcastV2)))
	require.NoError(t, eventbus.Register[badVersion](reg))

	payload, version, err := reg.EncodePayload(profileChanged{First: "Ada", Last: "Lovelace"})
	require.NoError(t, err)
	require.Equal(t, 3, version)
	require.JSONEq(t, `{"First":"Ada","Last":"Lovelace"}`, string(payload))
	_, version, err = reg.EncodePayload(badVersion{})
	require.NoError(t, err)
	require.Equal(t, 1, version, "a version below 1 is version 1")

	_, _, err = reg.EncodePayload(userRegistered{})
	require.ErrorIs(t, err, eventbus.ErrNotRegistered)
	require.ErrorContains(t, err, "auth.user_registered")
	_, _, err = reg.EncodePayload(nil)
	require.Error(t, err)

	// A stored payload of an older version is upcast; 0 means 1.
	for _, v := range []int{0, 1} {
		e, err := reg.DecodePayload("auth.profile_changed", v, []byte(`{"Name":"Ada Lovelace"}`))
		require.NoError(t, err)
		require.Equal(t, profileChanged{First: "Ada", Last: "Lovelace"}, e)
	}
	_, err = reg.DecodePayload("auth.nobody_knows", 1, []byte(`{}`))
	require.ErrorIs(t, err, eventbus.ErrUnknownEvent)
	_, err = reg.DecodePayload("auth.profile_changed", 3, []byte(`{"First": 1}`))
	require.ErrorIs(t, err, eventbus.ErrDecode)
	var de *eventbus.DecodeError
	require.ErrorAs(t, err, &de)
	require.Equal(t, "auth.profile_changed", de.EventName)
	_, err = reg.DecodePayload("auth.profile_changed", 4, []byte(`{}`))
	require.ErrorContains(t, err, "newer than the 3")
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	require.NoError(t, eventbus.Register[userRegistered](reg))
	good, err := reg.Encode(sampleEnvelope())
	require.NoError(t, err)

	variant := func(change func(m *message.Message)) *message.Message {
		m := good.Copy()
		change(m)
		return m
	}
	tests := map[string]struct {
		msg  *message.Message
		want string
	}{
		"no name":         {variant(func(m *message.Message) { delete(m.Metadata, eventbus.HeaderEventName) }), `missing header "event_name"`},
		"no aggregate":    {variant(func(m *message.Message) { delete(m.Metadata, eventbus.HeaderAggregateID) }), `missing header "aggregate_id"`},
		"bad version":     {variant(func(m *message.Message) { m.Metadata.Set(eventbus.HeaderEventVersion, "two") }), "not a positive integer"},
		"bad time":        {variant(func(m *message.Message) { m.Metadata.Set(eventbus.HeaderOccurredAt, "yesterday") }), "occurred_at"},
		"content type":    {variant(func(m *message.Message) { m.Metadata.Set(eventbus.HeaderContentType, "application/avro") }), "content type"},
		"bad json":        {variant(func(m *message.Message) { m.Payload = []byte(`{"Email": 1}`) }), "payload into"},
		"newer version":   {variant(func(m *message.Message) { m.Metadata.Set(eventbus.HeaderEventVersion, "2") }), "newer than the 1"},
		"unknown version": {variant(func(m *message.Message) { m.Metadata.Set(eventbus.HeaderEventVersion, "0") }), "not a positive integer"},
	}
	for name, tc := range tests {
		_, err := reg.Decode(tc.msg)
		require.ErrorIs(t, err, eventbus.ErrDecode, name)
		require.ErrorContains(t, err, tc.want, name)
		var de *eventbus.DecodeError
		require.ErrorAs(t, err, &de, name)
	}

	unknown := variant(func(m *message.Message) { m.Metadata.Set(eventbus.HeaderEventName, "auth.nobody_knows") })
	env, err := reg.Decode(unknown)
	require.ErrorIs(t, err, eventbus.ErrUnknownEvent)
	require.Equal(t, "auth.nobody_knows", env.Name)
	require.Nil(t, env.Payload)
}

func TestUpcastersChain(t *testing.T) {
	t.Parallel()
	reg := newRegistry(t)
	require.NoError(t, eventbus.Register[profileChanged](reg, eventbus.Upcaster(1, upcastV1), eventbus.Upcaster(2, upcastV2)))
	msg := func(version, payload string) *message.Message {
		m := message.NewMessage("ev-1", []byte(payload))
		m.Metadata = message.Metadata{
			eventbus.HeaderEventName: "auth.profile_changed", eventbus.HeaderAggregateType: "user", eventbus.HeaderAggregateID: "u-1",
		}
		if version != "" {
			m.Metadata.Set(eventbus.HeaderEventVersion, version)
		}
		return m
	}
	for _, tc := range []struct{ version, payload string }{
		{"", `{"Name":"Ada Lovelace"}`}, // no header: version 1
		{"1", `{"Name":"Ada Lovelace"}`},
		{"2", `{"full_name":"Ada Lovelace"}`},
		{"3", `{"First":"Ada","Last":"Lovelace"}`},
	} {
		env, err := reg.Decode(msg(tc.version, tc.payload))
		require.NoError(t, err, tc.version)
		require.Equal(t, profileChanged{First: "Ada", Last: "Lovelace"}, env.Payload, tc.version)
		require.Equal(t, "ev-1", env.ID, "the message UUID stands in for a missing event ID header")
	}

	// A gap in the chain and a failing upcaster are decode errors.
	gap := newRegistry(t)
	require.NoError(t, eventbus.Register[profileChanged](gap, eventbus.Upcaster(2, upcastV2)))
	_, err := gap.Decode(msg("1", `{"Name":"x"}`))
	require.ErrorIs(t, err, eventbus.ErrDecode)
	require.ErrorContains(t, err, "no upcaster from schema version 1 to 2")
	_, err = reg.Decode(msg("1", `not json`))
	require.ErrorContains(t, err, "upcast from schema version 1 to 2")
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	base := errors.New("nope")
	err := eventbus.Permanent(base)
	require.ErrorIs(t, err, base)
	require.ErrorIs(t, err, eventbus.ErrPermanent)
	require.Equal(t, "nope", err.Error())
	require.NoError(t, eventbus.Permanent(nil))
}

func TestConfigValidateJoinsErrors(t *testing.T) {
	t.Parallel()
	err := (&eventbus.RouterConfig{
		Retry:         retry.Policy{MaxAttempts: -1, BaseDelay: time.Second, MaxDelay: time.Millisecond},
		UnknownEvents: 7, CloseTimeout: -1, Middleware: []message.HandlerMiddleware{nil},
	}).Validate()
	for _, want := range []string{"eventbus: RouterConfig.Retry: retry: Policy.MaxAttempts is -1", "larger than MaxDelay", "UnknownEvents", "CloseTimeout", "Middleware[0]"} {
		require.ErrorContains(t, err, want)
	}
	require.NoError(t, (*eventbus.RouterConfig)(nil).Validate())

	_, err = eventbus.NewRouter(nil, nil, nil)
	require.ErrorContains(t, err, "nil Transport")
	require.ErrorContains(t, err, "nil Registry")
	_, err = eventbus.NewPublisher(nil, nil)
	require.ErrorContains(t, err, "nil message.Publisher")
}

func TestRouterRegistrationErrors(t *testing.T) {
	t.Parallel()
	tr := eventbus.NewMemoryTransport(nil)
	defer tr.Close()
	reg := newRegistry(t)
	require.NoError(t, eventbus.Register[userRegistered](reg, eventbus.AggregateType("user")))
	require.NoError(t, eventbus.Register[*ptrEvent](reg))
	r, err := eventbus.NewRouter(tr, reg, &eventbus.RouterConfig{Logger: testLogger()})
	require.NoError(t, err)
	noop := func(context.Context, userRegistered, aggregate.Envelope) error { return nil }

	require.ErrorIs(t, eventbus.Handle(r, "h", func(context.Context, profileChanged, aggregate.Envelope) error { return nil }), eventbus.ErrNotRegistered)
	require.ErrorContains(t, eventbus.Handle(r, "h", func(context.Context, *ptrEvent, aggregate.Envelope) error { return nil }), "no topic")
	require.ErrorContains(t, eventbus.Handle(r, "", noop), "empty handler name")
	require.ErrorContains(t, eventbus.Handle[userRegistered](r, "h", nil), "nil function")
	require.ErrorContains(t, eventbus.Handle(r, "h", noop, eventbus.DeadLetterTopic("user.events")), "is the topic it consumes")
	require.NoError(t, eventbus.Handle(r, "h", noop))
	require.ErrorIs(t, eventbus.Handle(r, "h", noop), eventbus.ErrDuplicateHandler)
	require.ErrorContains(t, eventbus.Handle(r, "h", func(context.Context, *ptrEvent, aggregate.Envelope) error { return nil }, eventbus.FromTopic("other")), "one handler name is one consumer of one topic")
	require.ErrorContains(t, eventbus.HandleOnce[userRegistered](r, "once", nil, noop), "nil Inbox")
	require.ErrorContains(t, eventbus.HandleOnce[userRegistered](r, "once", eventbus.NewMemoryInbox(), nil), "nil function")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Running()
	require.ErrorIs(t, eventbus.Handle(r, "late", noop), eventbus.ErrRouterRunning)
	require.ErrorIs(t, r.Run(ctx), eventbus.ErrRouterRunning)
	cancel()
	require.NoError(t, <-done)
}

func TestPublisher(t *testing.T) {
	t.Parallel()
	tr := eventbus.NewMemoryTransport(&eventbus.MemoryConfig{Persistent: true})
	defer tr.Close()
	reg := newRegistry(t)
	require.NoError(t, eventbus.Register[userRegistered](reg, eventbus.AggregateType("user")))
	pub, err := eventbus.NewPublisher(tr.Publisher(), reg)
	require.NoError(t, err)

	ctx := aggregate.ContextWithMetadata(context.Background(), aggregate.Metadata{CorrelationID: "req-1", CausationID: "cmd-1"})
	env := sampleEnvelope()
	env.Metadata = aggregate.Metadata{CausationID: "own"}
	require.NoError(t, pub.Publish(ctx, env))
	unregistered := sampleEnvelope()
	unregistered.Name, unregistered.Payload = "", profileChanged{}
	require.ErrorIs(t, pub.Publish(ctx, unregistered), eventbus.ErrNotRegistered)

	sub, err := tr.Subscriber("reader")
	require.NoError(t, err)
	defer sub.Close()
	subCtx, stop := context.WithCancel(context.Background())
	defer stop()
	ch, err := sub.Subscribe(subCtx, "user.events")
	require.NoError(t, err)
	msg := <-ch
	msg.Ack()
	got, err := reg.Decode(msg)
	require.NoError(t, err)
	require.Equal(t, env.Payload, got.Payload)
	require.Equal(t, env.ID, got.ID)
	require.Equal(t, "req-1", got.Metadata.CorrelationID, "filled from the context")
	require.Equal(t, "own", got.Metadata.CausationID, "the envelope's own metadata wins")

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, pub.Publish(cctx, env), context.Canceled)
}

func FuzzDecode(f *testing.F) {
	reg := eventbus.NewRegistry(nil)
	if err := eventbus.Register[profileChanged](reg, eventbus.Upcaster(1, upcastV1), eventbus.Upcaster(2, upcastV2)); err != nil {
		f.Fatal(err)
	}
	f.Add("auth.profile_changed", "1", "2026-01-02T03:04:05Z", "3", []byte(`{"Name":"Ada Lovelace"}`))
	f.Add("auth.profile_changed", "3", "", "", []byte(`{"First":"A"}`))
	f.Add("auth.profile_changed", "2", "x", "-1", []byte(`null`))
	f.Add("other", "", "", "", []byte(`{}`))
	f.Fuzz(func(t *testing.T, name, version, occurred, aggVersion string, payload []byte) {
		m := message.NewMessage("id", payload)
		m.Metadata = message.Metadata{
			eventbus.HeaderEventName: name, eventbus.HeaderEventVersion: version,
			eventbus.HeaderOccurredAt: occurred, eventbus.HeaderAggregateVersion: aggVersion,
			eventbus.HeaderAggregateType: "user", eventbus.HeaderAggregateID: "u",
		}
		env, err := reg.Decode(m)
		if err == nil {
			if _, ok := env.Payload.(profileChanged); !ok {
				t.Fatalf("decoded %T", env.Payload)
			}
			if env.Name != "auth.profile_changed" {
				t.Fatalf("name %q", env.Name)
			}
		} else if !errors.Is(err, eventbus.ErrDecode) && !errors.Is(err, eventbus.ErrUnknownEvent) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
