//go:build !unix

package persistence

import "errors"

// freeBytes is not measured here: no reserve is kept.
func freeBytes(string) (int64, error) { return 0, errors.New("free space unknown on this system") }
