package fieldcrypt_test

import (
	"fmt"
	"strings"

	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
)

// The auth module seals a one-time code bound to the user ID; the
// notification module, holding the same key, opens it.
func Example() {
	// FIELD_ENCRYPTION_KEY="2026-11:<new key>,2026-05:<old key>": the first
	// key seals, both open (openssl rand -hex 32 makes a key).
	keys, err := fieldcrypt.ParseKeys("2026-11:" + fieldcrypt.GenerateKey() + ",2026-05:" + fieldcrypt.GenerateKey())
	if err != nil {
		panic(err)
	}
	c, err := fieldcrypt.NewRing(keys)
	if err != nil {
		panic(err)
	}

	sealed, _ := c.Seal("493027", "user-42")
	fmt.Println(strings.HasPrefix(sealed, "v2.2026-11."), strings.Contains(sealed, "493027"))

	code, err := c.Open(sealed, "user-42")
	fmt.Println(code, err)

	_, err = c.Open(sealed, "user-43")
	fmt.Println(err)
	// Output:
	// true false
	// 493027 <nil>
	// fieldcrypt: cannot decrypt field
}
