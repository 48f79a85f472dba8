package valueobject_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/valueobject"
)

func TestNewID(t *testing.T) {
	t.Parallel()
	before := time.Now().Add(-time.Millisecond)
	id := valueobject.NewID()
	require.False(t, id.IsZero())
	require.Equal(t, 7, id.Version())
	require.WithinRange(t, id.Time(), before.Truncate(time.Millisecond), time.Now().Add(time.Second))

	parsed, err := valueobject.ParseID(id.String())
	require.NoError(t, err)
	require.Equal(t, id, parsed)

	next := valueobject.NewID()
	require.Less(t, id.String(), next.String(), "IDs made later sort later")
}

func TestParseIDAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		version        int
		time           time.Time
	}{
		{"v7", "0190c4d2-7b1a-7c3e-8f00-123456789012", "0190c4d2-7b1a-7c3e-8f00-123456789012", 7, time.UnixMilli(0x0190c4d27b1a)},
		{"v7 upper case", "0190C4D2-7B1A-7C3E-BF00-12345678901A", "0190c4d2-7b1a-7c3e-bf00-12345678901a", 7, time.UnixMilli(0x0190c4d27b1a)},
		{"v4", "f47ac10b-58cc-4372-a567-0e02b2c3d479", "f47ac10b-58cc-4372-a567-0e02b2c3d479", 4, time.Time{}},
		{"v1", "c232ab00-9414-11ec-b3c8-9f6bdeced846", "c232ab00-9414-11ec-b3c8-9f6bdeced846", 1, time.Time{}},
		{"v8", "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0", "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0", 8, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := valueobject.ParseID(tt.in)
			require.NoError(t, err)
			require.Equal(t, tt.want, id.String())
			require.Equal(t, tt.version, id.Version())
			require.True(t, tt.time.Equal(id.Time()), "Time() = %v, want %v", id.Time(), tt.time)
		})
	}
}

func TestParseIDRejects(t *testing.T) {
	t.Parallel()
	const syntax = "must be a UUID in the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
	tests := []struct {
		name, in string
		sentinel error
		reason   string
	}{
		{"empty", "", valueobject.ErrEmpty, "must not be empty"},
		{"short", "0190c4d2-7b1a-7c3e-8f00-12345678901", valueobject.ErrInvalid, syntax},
		{"no hyphens", "0190c4d27b1a7c3e8f00123456789012", valueobject.ErrInvalid, syntax},
		{"braces", "{0190c4d2-7b1a-7c3e-8f00-123456789012}", valueobject.ErrInvalid, syntax},
		{"urn", "urn:uuid:0190c4d2-7b1a-7c3e-8f00-123456789012", valueobject.ErrInvalid, syntax},
		{"whitespace", " 0190c4d2-7b1a-7c3e-8f00-123456789012", valueobject.ErrInvalid, syntax},
		{"not hex", "0190c4d2-7b1a-7c3e-8f00-12345678901g", valueobject.ErrInvalid, syntax},
		{"nil UUID", "00000000-0000-0000-0000-000000000000", valueobject.ErrInvalid, "must not be the nil UUID"},
		{"max UUID", "ffffffff-ffff-ffff-ffff-ffffffffffff", valueobject.ErrInvalid, "must be an RFC 9562 UUID (variant bits 10)"},
		{"NCS variant", "0190c4d2-7b1a-7c3e-0f00-123456789012", valueobject.ErrInvalid, "must be an RFC 9562 UUID (variant bits 10)"},
		{"Microsoft variant", "0190c4d2-7b1a-7c3e-cf00-123456789012", valueobject.ErrInvalid, "must be an RFC 9562 UUID (variant bits 10)"},
		{"version 0", "0190c4d2-7b1a-0c3e-8f00-123456789012", valueobject.ErrInvalid, "UUID version 0 is not defined, want 1 to 8"},
		{"version 9", "0190c4d2-7b1a-9c3e-8f00-123456789012", valueobject.ErrInvalid, "UUID version 9 is not defined, want 1 to 8"},
		{"version 15", "0190c4d2-7b1a-fc3e-8f00-123456789012", valueobject.ErrInvalid, "UUID version 15 is not defined, want 1 to 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, err := valueobject.ParseID(tt.in)
			require.True(t, id.IsZero())
			require.ErrorIs(t, err, tt.sentinel)
			var ve *valueobject.Error
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "id", ve.Field)
			require.Equal(t, tt.reason, ve.Reason)
		})
	}
}

func TestIDZero(t *testing.T) {
	t.Parallel()
	var id valueobject.ID
	require.True(t, id.IsZero())
	require.Empty(t, id.String())
	require.Equal(t, 0, id.Version())
	require.True(t, id.Time().IsZero())
	text, err := id.MarshalText()
	require.NoError(t, err)
	require.Empty(t, text)
}

func TestIDJSONAndMapKey(t *testing.T) {
	t.Parallel()
	type event struct {
		ID valueobject.ID `json:"id"`
	}
	id := valueobject.NewID()
	out, err := json.Marshal(event{ID: id})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"`+id.String()+`"}`, string(out))

	var got event
	require.NoError(t, json.Unmarshal(out, &got))
	require.Equal(t, id, got.ID)

	// TextMarshaler also makes IDs usable as JSON object keys.
	m := map[valueobject.ID]int{id: 1}
	out, err = json.Marshal(m)
	require.NoError(t, err)
	var back map[valueobject.ID]int
	require.NoError(t, json.Unmarshal(out, &back))
	require.Equal(t, m, back)

	err = json.Unmarshal([]byte(`{"id":"00000000-0000-0000-0000-000000000000"}`), &got)
	var ve *valueobject.Error
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "id", ve.Field)
	require.Equal(t, id, got.ID, "a failed unmarshal leaves the value alone")
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		valueobject.NewID().String(),
		"0190c4d2-7b1a-7c3e-8f00-123456789012",
		"0190C4D2-7B1A-7C3E-BF00-12345678901A",
		"f47ac10b-58cc-4372-a567-0e02b2c3d479",
		"00000000-0000-0000-0000-000000000000",
		"ffffffff-ffff-ffff-ffff-ffffffffffff",
		"0190c4d2-7b1a-0c3e-8f00-123456789012",
		"{0190c4d2-7b1a-7c3e-8f00-123456789012}",
		"not a uuid",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := valueobject.ParseID(s)
		if err != nil {
			var ve *valueobject.Error
			if !errors.As(err, &ve) || ve.Field != "id" || ve.Reason == "" || ve.Err == nil {
				t.Fatalf("ParseID(%q): error %v is not a complete *Error", s, err)
			}
			if !id.IsZero() {
				t.Fatalf("ParseID(%q) failed but returned %v", s, id)
			}
			return
		}
		str := id.String()
		if str != strings.ToLower(s) {
			t.Fatalf("ParseID(%q).String() = %q, want the input in lower case", s, str)
		}
		if id.IsZero() || id.Version() < 1 || id.Version() > 8 {
			t.Fatalf("ParseID(%q) accepted zero or version %d", s, id.Version())
		}
		again, err := valueobject.ParseID(str)
		if err != nil || again != id {
			t.Fatalf("ParseID(%q) = %v, which re-parses to %v, %v", s, id, again, err)
		}
		var viaText valueobject.ID
		text, err := id.MarshalText()
		if err != nil || viaText.UnmarshalText(text) != nil || viaText != id {
			t.Fatalf("text round trip of %v: %q, %v, %v", id, text, viaText, err)
		}
	})
}
