package seam

import (
	"errors"
	"fmt"
	"testing"
)

// Every error code but UNSPECIFIED has its error value, and an error
// answered with that code is that error on the caller's side.
func TestEveryErrorCodeRoundTrips(t *testing.T) {
	for num, name := range ErrorCode_name {
		code := ErrorCode(num)
		if code == ErrorCode_ERROR_CODE_UNSPECIFIED {
			continue
		}
		target, ok := codeErrors[code]
		if !ok {
			t.Fatalf("%s has no error value", name)
		}
		wrapped := fmt.Errorf("instance x: %w", target)
		back := ErrorOf(wrapped).Err()
		if !errors.Is(back, target) || CodeOf(back) != code || back.Error() != wrapped.Error() {
			t.Fatalf("%s: answered %v (code %s), want %v", name, back, CodeOf(back), target)
		}
	}
}

func TestAnUnexpectedErrorKeepsItsMessageOnly(t *testing.T) {
	back := ErrorOf(errors.New("disk on fire")).Err()
	if back.Error() != "disk on fire" || CodeOf(back) != ErrorCode_ERROR_CODE_UNSPECIFIED {
		t.Fatalf("got %v (%s)", back, CodeOf(back))
	}
	if ErrorOf(nil) != nil || (*Error)(nil).Err() != nil {
		t.Fatal("nil did not stay nil")
	}
}
