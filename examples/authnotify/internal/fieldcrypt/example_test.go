package fieldcrypt_test

import (
	"fmt"
	"strings"

	"github.com/dddkit/dddkit/examples/authnotify/internal/fieldcrypt"
)

// The auth module seals a one-time code bound to the user ID; the
// notification module, holding the same key, opens it.
func Example() {
	key, err := fieldcrypt.ParseKey("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	if err != nil {
		panic(err)
	}
	c, err := fieldcrypt.New(key)
	if err != nil {
		panic(err)
	}

	sealed, _ := c.Seal("493027", "user-42")
	fmt.Println(strings.HasPrefix(sealed, "v1."), strings.Contains(sealed, "493027"))

	code, err := c.Open(sealed, "user-42")
	fmt.Println(code, err)

	_, err = c.Open(sealed, "user-43")
	fmt.Println(err)
	// Output:
	// true false
	// 493027 <nil>
	// fieldcrypt: cannot decrypt field
}
