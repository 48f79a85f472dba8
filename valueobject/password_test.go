package valueobject_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dddkit/dddkit/valueobject"
)

func TestNewPasswordAccepts(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"correct horse battery staple",
		"Tr0ub4dor&3",
		"8charsOK",
		"pässwörd!",                      // 9 characters, 11 bytes
		"日本語のパスワードです",                    // 11 characters, 33 bytes
		" leading and trailing ",         // spaces are kept
		strings.Repeat("ab1", 42) + "xy", // 128 characters
		"abcdefgz",                       // not quite a sequence
		"aaaaaaab",                       // not quite one character
		"qwertyuiop1",                    // a keyboard row plus something
	} {
		t.Run(in, func(t *testing.T) {
			t.Parallel()
			pw, err := valueobject.NewPassword(in, "someone@example.com", "someone")
			require.NoError(t, err)
			require.False(t, pw.IsZero())
			require.Equal(t, in, pw.Reveal(), "the text is kept as given")
		})
	}
}

func TestNewPasswordRejects(t *testing.T) {
	t.Parallel()
	const (
		weakRepeated = "must not be a single repeated character"
		weakSequence = `must not be a simple sequence such as "abcdefgh", "87654321" or "qwertyui"`
		weakCommon   = "is too common and easy to guess"
		weakPersonal = "must not be the same as the email address or user name"
	)
	tests := []struct {
		name, in string
		sentinel error
		reason   string
	}{
		{"empty", "", valueobject.ErrEmpty, "must not be empty"},
		{"too short", "aB3$x", valueobject.ErrTooShort, "must be at least 8 characters long"},
		{"too short in characters, long in bytes", "ääääxyz", valueobject.ErrTooShort, "must be at least 8 characters long"},
		{"too long", strings.Repeat("ab1", 43), valueobject.ErrTooLong, "must be at most 128 characters long"},
		{"far too long", strings.Repeat("x", 1<<20), valueobject.ErrTooLong, "must be at most 128 characters long"},
		{"invalid UTF-8", "abc\xffdefgh", valueobject.ErrInvalid, "must be valid UTF-8 text"},
		{"NUL", "abc\x00defgh", valueobject.ErrInvalid, "must not contain control characters"},
		{"newline", "abcdefgh\n", valueobject.ErrInvalid, "must not contain control characters"},
		{"repeated", "aaaaaaaa", valueobject.ErrWeakPassword, weakRepeated},
		{"repeated mixed case", "aAaAaAaAaA", valueobject.ErrWeakPassword, weakRepeated},
		{"repeated non-ASCII", "éééééééé", valueobject.ErrWeakPassword, weakRepeated},
		{"ascending letters", "cdefghij", valueobject.ErrWeakPassword, weakSequence},
		{"ascending upper case", "ABCDEFGHIJ", valueobject.ErrWeakPassword, weakSequence},
		{"descending letters", "zyxwvuts", valueobject.ErrWeakPassword, weakSequence},
		{"ascending digits", "0123456789", valueobject.ErrWeakPassword, weakSequence},
		{"descending digits", "9876543210", valueobject.ErrWeakPassword, weakSequence},
		{"digit row wrapping to 0", "34567890", valueobject.ErrWeakPassword, weakSequence},
		{"keyboard row", "wertyuio", valueobject.ErrWeakPassword, weakSequence},
		{"keyboard row reversed", "lkjhgfdsa", valueobject.ErrWeakPassword, weakSequence},
		{"QWERTZ row", "qwertzui", valueobject.ErrWeakPassword, weakSequence},
		{"AZERTY row", "azertyuiop", valueobject.ErrWeakPassword, weakSequence},
		{"common", "password", valueobject.ErrWeakPassword, weakCommon},
		{"common mixed case", "PassWord123", valueobject.ErrWeakPassword, weakCommon},
		{"common iloveyou", "iloveyou", valueobject.ErrWeakPassword, weakCommon},
		{"common 1q2w3e4r", "1q2w3e4r", valueobject.ErrWeakPassword, weakCommon},
		{"common trustno1", "TRUSTNO1", valueobject.ErrWeakPassword, weakCommon},
		{"email local part", "Someone.Else", valueobject.ErrWeakPassword, weakPersonal},
		{"whole email", "someone.else@example.com", valueobject.ErrWeakPassword, weakPersonal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pw, err := valueobject.NewPassword(tt.in, "someone.else@example.com", "someone.else", "")
			require.True(t, pw.IsZero())
			require.ErrorIs(t, err, tt.sentinel)
			var ve *valueobject.Error
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "password", ve.Field)
			require.Equal(t, tt.reason, ve.Reason)
			if tt.in != "" {
				require.NotContains(t, ve.Reason, tt.in[:min(len(tt.in), 64)], "the reason must not echo the password")
			}
		})
	}
}

func TestPasswordPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policy   valueobject.PasswordPolicy
		in       string
		sentinel error // nil: accepted
		reason   string
	}{
		{"zero policy is the default: short", valueobject.PasswordPolicy{}, "aB3$x", valueobject.ErrTooShort, "must be at least 8 characters long"},
		{"zero policy is the default: long", valueobject.PasswordPolicy{}, strings.Repeat("x1", 65), valueobject.ErrTooLong, "must be at most 128 characters long"},
		{"zero policy is the default: ok", valueobject.PasswordPolicy{}, "Tr0ub4dor&3", nil, ""},
		{"huge maximum", valueobject.PasswordPolicy{MaxLength: math.MaxInt}, strings.Repeat("x1", 1000), nil, ""},
		{"higher minimum", valueobject.PasswordPolicy{MinLength: 12}, "Tr0ub4dor&3", valueobject.ErrTooShort, "must be at least 12 characters long"},
		{"lower maximum", valueobject.PasswordPolicy{MaxLength: 10}, "Tr0ub4dor&3", valueobject.ErrTooLong, "must be at most 10 characters long"},
		{"negative means default", valueobject.PasswordPolicy{MinLength: -1, MaxLength: -1}, "aB3$x", valueobject.ErrTooShort, "must be at least 8 characters long"},
		{"lower minimum", valueobject.PasswordPolicy{MinLength: 4}, "aB3$x", nil, ""},
		{"short common", valueobject.PasswordPolicy{MinLength: 4}, "Abc123", valueobject.ErrWeakPassword, "is too common and easy to guess"},
		{"short sequence", valueobject.PasswordPolicy{MinLength: 3}, "cba", valueobject.ErrWeakPassword, `must not be a simple sequence such as "abcdefgh", "87654321" or "qwertyui"`},
		{"two characters are no sequence", valueobject.PasswordPolicy{MinLength: 2}, "ab", nil, ""},
		{"one character is no repetition", valueobject.PasswordPolicy{MinLength: 1}, "a", nil, ""},
		{"banned", valueobject.PasswordPolicy{Banned: []string{"", "dddkit2025"}}, "DDDKit2025", valueobject.ErrWeakPassword, "is too common and easy to guess"},
		{"not banned", valueobject.PasswordPolicy{Banned: []string{"dddkit2025"}}, "dddkit2026", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Validate(tt.in)
			pw, newErr := tt.policy.New(tt.in)
			if tt.sentinel == nil {
				require.NoError(t, err)
				require.NoError(t, newErr)
				require.Equal(t, tt.in, pw.Reveal())
				return
			}
			require.ErrorIs(t, err, tt.sentinel)
			require.Equal(t, err, newErr)
			require.True(t, pw.IsZero())
			var ve *valueobject.Error
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "password", ve.Field)
			require.Equal(t, tt.reason, ve.Reason)
		})
	}
}

func TestPasswordNeverShowsItsText(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-Horse-Battery"
	pw, err := valueobject.NewPassword(secret)
	require.NoError(t, err)

	type command struct {
		Email    string
		Password valueobject.Password
		hidden   valueobject.Password
		ptr      *valueobject.Password
	}
	cmd := command{Email: "someone@example.com", Password: pw, hidden: pw, ptr: &pw}

	var outputs []string
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10s", "%d", "%p", "%T"} {
		outputs = append(outputs, fmt.Sprintf(format, pw), fmt.Sprintf(format, cmd), fmt.Sprintf(format, &cmd))
	}
	outputs = append(outputs, pw.String(), pw.GoString(), fmt.Sprint(pw), fmt.Sprintln(pw, cmd), fmt.Sprint([]valueobject.Password{pw}))

	var logged bytes.Buffer
	text := slog.New(slog.NewTextHandler(&logged, nil))
	text.Info("register", "password", pw, "cmd", cmd)
	jsonLog := slog.New(slog.NewJSONHandler(&logged, nil))
	jsonLog.Info("register", slog.Any("password", pw))
	outputs = append(outputs, logged.String())

	for _, out := range outputs {
		require.NotContains(t, out, secret)
		require.NotContains(t, out, fmt.Sprintf("%x", secret))
		require.NotContains(t, out, fmt.Sprintf("%X", secret))
	}
	require.Equal(t, "[REDACTED]", pw.String())
	require.Equal(t, "[REDACTED]", fmt.Sprintf("%v", pw))
	require.Equal(t, "valueobject.Password([REDACTED])", fmt.Sprintf("%#v", pw))
	require.Contains(t, logged.String(), "password=[REDACTED]")

	_, err = json.Marshal(cmd)
	require.ErrorContains(t, err, "never serialized")
	_, err = pw.MarshalText()
	require.Error(t, err)
}

func TestPasswordZero(t *testing.T) {
	t.Parallel()
	var pw valueobject.Password
	require.True(t, pw.IsZero())
	require.Empty(t, pw.Reveal())
	require.Equal(t, "[REDACTED]", pw.String())
}
