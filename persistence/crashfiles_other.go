//go:build windows || plan9 || js || wasip1 || aix

package persistence

import "log/slog"

// removeEmptyLogFiles is a no-op where Badger does not lock its directory
// with flock: without that lock, files of a live process could be taken
// for crash leftovers.
func removeEmptyLogFiles(dir string, log *slog.Logger) error { return nil }
