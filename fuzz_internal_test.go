package durable

import (
	"errors"
	"testing"

	"github.com/durable-go/durable/seam"
)

// FuzzContinuationToken: a token from a client either decodes to a cursor
// that encodes back to the same token, or is ErrInvalidInput; never a
// panic.
func FuzzContinuationToken(f *testing.F) {
	for _, s := range []string{"", "AAAAAAAAAAE", "AAAAAAAAAAFpZA", "null", "!!", "AAAA", encodeToken(&seam.ListCursor{CreatedUnixNano: 1 << 62, InstanceId: "x/y"})} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := decodeToken(tok)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("decodeToken(%q): %v, want ErrInvalidInput", tok, err)
			}
			return
		}
		if c == nil {
			if tok != "" {
				t.Fatalf("decodeToken(%q) gave no cursor and no error", tok)
			}
			return
		}
		again, err := decodeToken(encodeToken(c))
		if err != nil || again.GetCreatedUnixNano() != c.GetCreatedUnixNano() || again.GetInstanceId() != c.GetInstanceId() {
			t.Fatalf("token %q: cursor %v re-encodes to %v, %v", tok, c, again, err)
		}
	})
}
