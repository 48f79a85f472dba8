package testbroker

import (
	"encoding/base64"
	"testing"
)

func TestNewClusterIDNeverLooksLikeAnOption(t *testing.T) {
	t.Parallel()
	for range 10_000 { // without the redraw, ~156 of these would start with '-'
		id := newClusterID()
		if id[0] == '-' {
			t.Fatalf("cluster ID %q starts with '-'", id)
		}
		if b, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(b) != 16 {
			t.Fatalf("cluster ID %q is not 16 bytes of base64url: %v", id, err)
		}
	}
}
